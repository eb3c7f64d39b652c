// ICMP echo (RFC 792) and ICMPv6 echo (RFC 4443 §4): requests built and replies parsed
// as bytes (pure). The agent's tunnel probe pings a peer node's tunnel address through
// WireGuard: an answer is authenticated evidence that the path works both ways (WireGuard
// accepted the request at the peer and the reply here), which one-way keepalives can
// never give.
#ifndef WEFT_LIB_NET_ICMP_ECHO_H_
#define WEFT_LIB_NET_ICMP_ECHO_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "lib/net/ip_address.h"

namespace weft::net {

// Type 8 code 0, `id` and `seq`, `payload_size` bytes of a fixed pattern, checksummed.
std::vector<uint8_t> BuildEchoRequest(uint16_t id, uint16_t seq, size_t payload_size);

struct EchoReply {
  IpAddress from;
  uint16_t id = 0, seq = 0;
  size_t payload_size = 0;
};
// An IPv4 packet as a raw ICMP socket returns it (header included): an echo reply with a
// valid checksum, or nullopt for anything else (other types, truncation, bad lengths).
std::optional<EchoReply> ParseEchoReply(absl::Span<const uint8_t> ip_packet);

// ICMPv6: type 128 code 0, with a zero checksum (the kernel fills it in for a raw ICMPv6
// socket, RFC 3542 §3.1: it covers the pseudo-header, whose source the kernel picks).
std::vector<uint8_t> BuildEchoRequest6(uint16_t id, uint16_t seq, size_t payload_size);
// An ICMPv6 message as a raw ICMPv6 socket returns it (no IPv6 header; the kernel checked
// the checksum) and the address it came from: an echo reply, or nullopt.
std::optional<EchoReply> ParseEchoReply6(absl::Span<const uint8_t> icmp6, const IpAddress& from);

// The Internet checksum (RFC 1071) of `data`.
uint16_t InternetChecksum(absl::Span<const uint8_t> data);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_ICMP_ECHO_H_
