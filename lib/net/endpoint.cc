#include "lib/net/endpoint.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weft::net {

absl::StatusOr<Endpoint> Endpoint::Parse(absl::string_view text) {
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("invalid endpoint \"", text, "\"")); };
  absl::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) return bad();  // IPv6 needs brackets
  }
  auto ip = IpAddress::Parse(host);
  uint32_t p = 0;
  if (!ip.ok() || port.empty() || port.size() > 5 || !absl::SimpleAtoi(port, &p) || p > 65535) return bad();
  return Endpoint{*ip, static_cast<uint16_t>(p)};
}

std::string Endpoint::ToString() const {
  return ip.is_v4() ? absl::StrCat(ip.ToString(), ":", port) : absl::StrCat("[", ip.ToString(), "]:", port);
}

sockaddr_in ToSockaddrV4(const Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  std::memcpy(&a.sin_addr, e.ip.bytes(), 4);
  return a;
}

Endpoint FromSockaddrV4(const sockaddr_in& a) {
  return Endpoint{IpAddress::FromBytes(Family::kV4, reinterpret_cast<const uint8_t*>(&a.sin_addr)), ntohs(a.sin_port)};
}

socklen_t ToSockaddr(const Endpoint& e, sockaddr_storage* out) {
  *out = {};
  if (e.ip.is_v4()) {
    const sockaddr_in a = ToSockaddrV4(e);
    std::memcpy(out, &a, sizeof(a));
    return sizeof(a);
  }
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(e.port);
  std::memcpy(&a.sin6_addr, e.ip.bytes(), 16);
  std::memcpy(out, &a, sizeof(a));
  return sizeof(a);
}

std::optional<Endpoint> FromSockaddr(const void* addr, size_t len) {
  sockaddr_storage s{};
  std::memcpy(&s, addr, std::min(len, sizeof(s)));
  if (s.ss_family == AF_INET && len >= sizeof(sockaddr_in)) return FromSockaddrV4(reinterpret_cast<const sockaddr_in&>(s));
  if (s.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(s);
    return Endpoint{IpAddress::FromBytes(Family::kV6, reinterpret_cast<const uint8_t*>(&a.sin6_addr)), ntohs(a.sin6_port)};
  }
  return std::nullopt;
}

Endpoint LoopbackV4(uint16_t port) { return Endpoint{IpAddress::V4(0x7f000001), port}; }

}  // namespace weft::net
