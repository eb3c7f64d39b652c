#include "lib/net/ip_address.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace weft::net {

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress a;
  a.family_ = Family::kV4;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_.data(), &n, 4);
  return a;
}

IpAddress IpAddress::FromBytes(Family family, const uint8_t* bytes) {
  IpAddress a;
  a.family_ = family;
  std::memcpy(a.bytes_.data(), bytes, family == Family::kV4 ? 4 : 16);
  return a;
}

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes_.data()) == 1) {
    a.family_ = Family::kV4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) == 1) {
    a.family_ = Family::kV6;
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"", text, "\""));
}

int IpAddress::af() const { return is_v4() ? AF_INET : AF_INET6; }

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(af(), bytes_.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

IpAddress IpAddress::Plus(uint64_t n) const {
  IpAddress r = *this;
  int i = byte_length() - 1;
  unsigned carry = 0;
  for (; i >= 0 && (n != 0 || carry != 0); --i) {
    unsigned sum = r.bytes_[i] + static_cast<unsigned>(n & 0xff) + carry;
    r.bytes_[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    n >>= 8;
  }
  return r;
}

IpAddress IpAddress::PlusPowerOfTwo(int bit) const {
  IpAddress r = *this;
  int i = byte_length() - 1 - bit / 8;
  unsigned carry = 1u << (bit % 8);
  for (; i >= 0 && carry != 0; --i) {
    unsigned sum = r.bytes_[i] + carry;
    r.bytes_[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
  return r;
}

IpAddress IpAddress::Masked(int prefix_len) const {
  IpAddress r = *this;
  for (int i = 0; i < byte_length(); ++i) {
    int bits = prefix_len - i * 8;
    if (bits >= 8) continue;
    r.bytes_[i] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
  return r;
}

IpAddress IpAddress::LastInPrefix(int prefix_len) const {
  IpAddress r = *this;
  for (int i = 0; i < byte_length(); ++i) {
    int bits = prefix_len - i * 8;
    if (bits >= 8) continue;
    r.bytes_[i] |= bits <= 0 ? 0xff : static_cast<uint8_t>(0xff >> bits);
  }
  return r;
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CIDR \"", text, "\": no prefix length"));
  }
  auto addr = IpAddress::Parse(text.substr(0, slash));
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CIDR \"", text, "\": bad address"));
  }
  int len = 0;
  absl::string_view len_text = text.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3 || !absl::SimpleAtoi(len_text, &len) || len < 0 ||
      len > addr->bit_length()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CIDR \"", text, "\": bad prefix length"));
  }
  return IpPrefix{*addr, len};
}

absl::StatusOr<IpPrefix> IpPrefix::ParseNetwork(absl::string_view text) {
  auto p = Parse(text);
  if (!p.ok()) return p;
  if (p->address != p->address.Masked(p->length)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid CIDR \"", text, "\": host bits set (did you mean ",
        IpPrefix{p->address.Masked(p->length), p->length}.ToString(), "?)"));
  }
  return p;
}

IpPrefix IpPrefix::Default(Family f) {
  static constexpr uint8_t kZero[16] = {};
  return {IpAddress::FromBytes(f, kZero), 0};
}

bool IpPrefix::Contains(const IpAddress& a) const {
  return a.family() == family() && a.Masked(length) == address.Masked(length);
}

bool IpPrefix::Covers(const IpPrefix& other) const {
  return other.family() == family() && other.length >= length && Contains(other.address);
}

bool IpPrefix::Overlaps(const IpPrefix& other) const { return Covers(other) || other.Covers(*this); }

std::string IpPrefix::ToString() const { return absl::StrCat(address.ToString(), "/", length); }

std::string MacAddress::ToString() const {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                         bytes[4], bytes[5]);
}

absl::string_view NonUnicastKind(const IpAddress& a) {
  const uint8_t* b = a.bytes();
  if (a.is_v4()) {
    if (b[0] == 0) return b[1] == 0 && b[2] == 0 && b[3] == 0 ? "unspecified" : "this network";
    if (b[0] == 127) return "loopback";
    if (b[0] == 169 && b[1] == 254) return "link-local";
    if (b[0] >= 224 && b[0] < 240) return "multicast";
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) return "broadcast";
    if (b[0] >= 240) return "reserved";
    return "";
  }
  bool zero_head = true;
  for (int i = 0; i < 15; ++i) zero_head = zero_head && b[i] == 0;
  if (zero_head && b[15] == 0) return "unspecified";
  if (zero_head && b[15] == 1) return "loopback";
  if (b[0] == 0xff) return "multicast";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
  // IPv4-mapped (::ffff:a.b.c.d): what the IPv4 address is.
  bool mapped = b[10] == 0xff && b[11] == 0xff;
  for (int i = 0; i < 10; ++i) mapped = mapped && b[i] == 0;
  if (mapped) return NonUnicastKind(IpAddress::FromBytes(Family::kV4, b + 12));
  return "";
}

}  // namespace weft::net
