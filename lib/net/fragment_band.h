// The fragmentation band: what IPv6 needs of a tunnel narrower than 1280 bytes.
//
// IPv6 never lets routers fragment, and a link must carry 1280-byte packets (RFC 8200
// 5: a link that cannot must fragment below IPv6). A WireGuard tunnel over an IPv4 path
// of 1280 carries at most 1216 bytes inside, so an IPv6 pod's full-size packet is its
// tunnel's to get across: its outer datagram goes without DF, and the IPv4 router at the
// narrow link fragments it (the peer reassembles before WireGuard sees it). Kernel
// WireGuard never sets DF; wireguard-go, the relay forwarder and the relay do (the
// path MTU search needs DF to measure anything).
//
// So DF is cleared exactly for the datagrams that carry an inner packet of 1217 to 1280
// bytes (WireGuard pads its plaintext to 16: transport messages of 1264 to 1312 bytes,
// raw or in TURN ChannelData), and the path MTU search never probes that band (its
// probes there would pass by fragmentation and prove nothing). An IPv4 pod's packets
// stay below the band on such a path (its routes carry the path MTU), so only IPv6's
// full-size packets are ever fragmented, and only where the path is that narrow.
#ifndef WEFT_LIB_NET_FRAGMENT_BAND_H_
#define WEFT_LIB_NET_FRAGMENT_BAND_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace weft::net {

// Inner packet sizes in the band: (kFragmentBandLow, kFragmentBandHigh].
inline constexpr int kFragmentBandLow = 1216;
inline constexpr int kFragmentBandHigh = 1280;
// WireGuard transport message = padded plaintext + 32 (header 16, tag 16).
inline constexpr int kWireGuardOverhead = 32;

// Whether an inner packet (an IPv4 or IPv6 datagram in the tunnel) of `size` is in it.
constexpr bool InnerInFragmentBand(int size) { return size > kFragmentBandLow && size <= kFragmentBandHigh; }

// Whether a UDP payload carries a WireGuard transport message of the band: raw, or in a
// TURN ChannelData frame (first byte 0x40-0x7F, 4 bytes of header).
bool InFragmentBand(absl::Span<const uint8_t> udp_payload);

// The IPv4 total length of a WireGuard datagram of the band, from the node's WireGuard
// port: [first, last] (for a packet filter that clears DF on them).
inline constexpr int kFragmentBandIpv4First = kFragmentBandLow + 1 + kWireGuardOverhead + 8 + 20;
inline constexpr int kFragmentBandIpv4Last = kFragmentBandHigh + kWireGuardOverhead + 8 + 20;

// Sends `n` datagrams from an IPv4 UDP socket as sendmmsg does (MSG_DONTWAIT is the
// caller's), with DF cleared on those of the band (IP_PMTUDISC_DONT around them; the
// socket is back at IP_PMTUDISC_WANT after). Runs of one kind go out in one sendmmsg.
// Returns how many were sent.
int SendmmsgWithFragmentBand(int fd, mmsghdr* msgs, int n, int flags);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_FRAGMENT_BAND_H_
