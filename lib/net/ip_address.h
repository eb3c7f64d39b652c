// IPv4/IPv6 addresses and prefixes as plain values: parse, format, arithmetic.
#ifndef WEFT_LIB_NET_IP_ADDRESS_H_
#define WEFT_LIB_NET_IP_ADDRESS_H_

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace weft::net {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes.
class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress V4(uint32_t host_order);
  static IpAddress FromBytes(Family family, const uint8_t* bytes);
  // Parses "10.0.0.1" or "fd00::1". InvalidArgument on anything else.
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // IPv6 global unicast (2000::/3): reachable across the internet, no NAT in between.
  bool is_global_v6() const { return !is_v4() && (bytes_[0] & 0xe0) == 0x20; }
  int bit_length() const { return is_v4() ? 32 : 128; }
  int byte_length() const { return is_v4() ? 4 : 16; }
  int af() const;  // AF_INET or AF_INET6
  const uint8_t* bytes() const { return bytes_.data(); }
  std::string ToString() const;

  // This address plus `n`, wrapping within the family's width.
  IpAddress Plus(uint64_t n) const;
  // This address plus 2^bit (bit < bit_length()), wrapping: the next block of a prefix.
  IpAddress PlusPowerOfTwo(int bit) const;
  // The address with all bits past `prefix_len` cleared (or set, for Last).
  IpAddress Masked(int prefix_len) const;
  IpAddress LastInPrefix(int prefix_len) const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

// An address with a prefix length: "10.244.1.0/24". `address` keeps host bits as given;
// Parse of a CIDR used as a network rejects host bits with ParseNetwork.
struct IpPrefix {
  IpAddress address;
  int length = 0;

  // Parses "10.244.1.5/32". InvalidArgument on a bad address or length.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  // As Parse, and the host bits must be zero ("10.244.1.0/24", not "10.244.1.1/24").
  static absl::StatusOr<IpPrefix> ParseNetwork(absl::string_view text);

  // 0.0.0.0/0 or ::/0.
  static IpPrefix Default(Family f);

  Family family() const { return address.family(); }
  bool Contains(const IpAddress& a) const;
  // Every address of `other` is in this prefix (same family).
  bool Covers(const IpPrefix& other) const;
  // The two share at least one address (same family).
  bool Overlaps(const IpPrefix& other) const;
  IpAddress First() const { return address.Masked(length); }
  IpAddress Last() const { return address.LastInPrefix(length); }
  std::string ToString() const;

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// Why `a` is not a unicast address a remote host can be reached at: "unspecified",
// "loopback", "link-local", "multicast", "broadcast", "this network" (0/8),
// "reserved" (240/4); "" when it is one.
absl::string_view NonUnicastKind(const IpAddress& a);

// A 48-bit Ethernet address.
struct MacAddress {
  std::array<uint8_t, 6> bytes{};
  std::string ToString() const;  // "ee:ee:ee:00:11:22"
  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

}  // namespace weft::net

#endif  // WEFT_LIB_NET_IP_ADDRESS_H_
