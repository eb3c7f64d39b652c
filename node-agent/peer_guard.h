// What the agent accepts of the controller's picture of its peers (pure). The controller
// is trusted to assign pod CIDRs, but a route into WireGuard is the most a node can be
// made to do for someone else, so the agent checks what it would install: a compromised
// or spoofed controller, or one with a bug, must not take this node's default route, its
// uplink's subnet, its own pods' addresses, or one peer's traffic for another.
#ifndef WEFT_NODE_AGENT_PEER_GUARD_H_
#define WEFT_NODE_AGENT_PEER_GUARD_H_

#include <map>
#include <string>
#include <vector>

#include "lib/net/ip_address.h"
#include "weft/v1/weft.pb.h"

namespace weft::agent {

struct GuardedPeers {
  // The peers as accepted: every pod CIDR a peer keeps is a network inside the cluster
  // CIDRs, overlaps none of ours and no other peer's; a peer's key is its own.
  std::map<std::string, v1::NodeInfo> nodes;
  // Peer → why (some of) what the controller said of it was refused.
  std::map<std::string, std::string> refused;
};

// `own`: this node's pod CIDRs; `own_key`: its public key; `cluster`: the cluster CIDRs.
// A peer prefix that overlaps another peer's is refused on both (neither may take the
// other's traffic); a key twice is refused on both; a peer left without a prefix keeps
// its entry (its candidates and NAT still matter) but is routed nothing.
GuardedPeers GuardPeers(const std::string& self, const std::vector<net::IpPrefix>& own, const std::string& own_key,
                        const std::vector<net::IpPrefix>& cluster, const std::map<std::string, v1::NodeInfo>& nodes);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_PEER_GUARD_H_
