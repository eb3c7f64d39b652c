#include "cni-plugin/naming.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {

// FNV-1a, 64 bits: stable across builds and versions (absl::Hash is not).
uint64_t Fnv1a(absl::string_view a, absl::string_view b) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  mix(a);
  mix(absl::string_view("\0", 1));
  mix(b);
  return h;
}

}  // namespace

std::string HostVethName(const ipam::Attachment& a) {
  uint64_t h = Fnv1a(a.container_id, a.ifname);
  return absl::StrFormat("weft%011x", h & ((uint64_t{1} << 44) - 1));
}

bool IsHostVethName(absl::string_view name) {
  if (name.size() != 15 || name.substr(0, 4) != "weft") return false;
  for (char c : name.substr(4)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

net::MacAddress PodMac(const ipam::Attachment& a) {
  uint64_t h = Fnv1a(a.ifname, a.container_id);
  net::MacAddress m;
  m.bytes[0] = 0x0a;  // locally administered, unicast
  for (int i = 1; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  return m;
}

net::MacAddress HostMac() { return net::MacAddress{{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}}; }

net::IpAddress GatewayV4() { return net::IpAddress::V4(0xa9fe0101); }

net::IpAddress GatewayV6() {
  uint8_t b[16] = {0xfe, 0x80};
  b[15] = 1;
  return net::IpAddress::FromBytes(net::Family::kV6, b);
}

const net::IpAddress& GatewayFor(net::Family f) {
  static const net::IpAddress v4 = GatewayV4();
  static const net::IpAddress v6 = GatewayV6();
  return f == net::Family::kV4 ? v4 : v6;
}

std::string HostVethAlias(absl::string_view network, const ipam::Attachment& a) {
  return absl::StrCat("weft:", network, ":", a.container_id, ":", a.ifname);
}

std::optional<ParsedAlias> ParseHostVethAlias(absl::string_view alias) {
  std::vector<absl::string_view> f = absl::StrSplit(alias, ':');
  if (f.size() != 4 || f[0] != "weft" || f[1].empty() || f[2].empty() || f[3].empty()) {
    return std::nullopt;
  }
  return ParsedAlias{std::string(f[1]), {std::string(f[2]), std::string(f[3])}};
}

}  // namespace weft::cni
