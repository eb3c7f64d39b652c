// The MTU of the node's uplink and of the WireGuard tunnel over it (DESIGN: "pod MTU =
// uplink MTU - WireGuard overhead - relay framing, computed, never guessed").
#ifndef WEFT_LIB_NET_UPLINK_MTU_H_
#define WEFT_LIB_NET_UPLINK_MTU_H_

#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"

namespace weft::net {

// WireGuard's cost per packet on the wire: an outer IPv6 header (40; IPv4's is 20, and
// the allowance covers either underlay), UDP (8), WireGuard's data header (16) and its
// authentication tag (16). A relayed path over UDP adds TURN's 4-byte ChannelData header,
// which fits in what an IPv4 underlay leaves of the allowance (relays are reached over
// IPv4); over TCP the stream is segmented by TCP itself.
inline constexpr int kWireGuardOverhead = 80;
inline constexpr int kMinTunnelMtu = 576;

// The tunnel's (and the pods') MTU for an uplink of `uplink_mtu`.
int TunnelMtu(int uplink_mtu);

// The uplink MTU towards `destinations` (the STUN servers, the controller: where the
// node's WireGuard traffic goes): for each, its route's mtu metric if set, else its
// output device's MTU; the smallest. With no destination, the default IPv4 route's.
// Nothing is sent (route lookups only). NotFound without any route.
absl::StatusOr<int> UplinkMtu(NlSocket& nl, const std::vector<IpAddress>& destinations);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_UPLINK_MTU_H_
