// Which of the node's own addresses it publishes as HOST candidates (pure). A node may
// hold many: kube-proxy in IPVS mode puts every Service address on kube-ipvs0, a host
// may have bridges and VPNs. Peers only need the few they could reach: the uplink's
// first (the interface of the route towards the STUN servers), then the others, IPv4,
// global scope, and one global IPv6 address (2000::/3; ULAs and link-local ones reach no
// other site), never the WireGuard device's, at most `max` (the controller refuses a
// report with more than 16 candidates in all).
#ifndef WEFT_NODE_AGENT_HOST_CANDIDATES_H_
#define WEFT_NODE_AGENT_HOST_CANDIDATES_H_

#include <vector>

#include "lib/net/ip_address.h"
#include "lib/net/rtnl_addr.h"

namespace weft::agent {

inline constexpr size_t kMaxHostCandidates = 8;

std::vector<net::IpAddress> HostCandidates(const std::vector<net::AddrInfo>& addrs, int uplink_ifindex, int wg_ifindex,
                                           size_t max = kMaxHostCandidates);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_HOST_CANDIDATES_H_
