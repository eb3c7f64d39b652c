// Path-MTU probes through the tunnel (packetization-layer probing in the spirit of RFC
// 8899), as bytes (pure). An agent sends a padded UDP probe to a peer node's tunnel
// address with DF set; the peer's agent answers with a small ack that says how large the
// probe was when it arrived. So each side measures only its own direction, and the
// answer can't be fragmented on its way back (a kernel's echo reply can: it follows the
// peer's route MTU, and a lowered one would make a too-large probe look answered).
//
//   0      4        5      6      8      10
//   "WFTM" version  type   seq    size   padding (probes only)
//
// `size` is the IPv4 datagram's size: what the prober sent, or what the responder got.
#ifndef WEFT_LIB_NET_MTU_PROBE_H_
#define WEFT_LIB_NET_MTU_PROBE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"

namespace weft::net {

// IPv4 and UDP headers in front of the probe's bytes.
inline constexpr int kMtuProbeHeaders = 28;
inline constexpr int kMtuProbeMinSize = kMtuProbeHeaders + 10;

struct MtuProbe {
  enum class Type : uint8_t { kProbe = 1, kAck = 2 };
  Type type = Type::kProbe;
  uint16_t seq = 0;
  uint16_t size = 0;
};

// A probe whose IPv4 datagram is `ip_size` bytes (at least kMtuProbeMinSize).
std::vector<uint8_t> BuildMtuProbe(uint16_t seq, uint16_t ip_size);
// The ack for a probe whose datagram arrived as `received_ip_size` bytes.
std::vector<uint8_t> BuildMtuAck(uint16_t seq, uint16_t received_ip_size);
// A UDP payload: a well-formed probe (whose claimed size matches its length) or ack, or
// nullopt for anything else.
std::optional<MtuProbe> ParseMtuProbe(absl::Span<const uint8_t> udp_payload);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_MTU_PROBE_H_
