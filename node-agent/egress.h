// Masquerade for pod traffic leaving the cluster: pods have cluster-internal addresses,
// so what goes anywhere but another pod leaves with the node's address.
#ifndef WEFT_NODE_AGENT_EGRESS_H_
#define WEFT_NODE_AGENT_EGRESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"

namespace weft::agent {

// The nftables ruleset (its own table, `inet weft`: IPv4 and IPv6) for `pod_cidrs` of this node and the
// `cluster_cidrs` that stay unmasqueraded, the TCP MSS clamp for SYNs forwarded into
// `wg_interface`, and DF cleared on WireGuard's datagrams (from `wg_port`) of the
// fragmentation band (lib/net/fragment_band.h: IPv6 pods across a path below 1280) (pure). Built from typed values only: what came from the controller was
// parsed as prefixes before it gets here, so no text of theirs reaches nft; an interface
// name that is not a plain one is refused.
absl::StatusOr<std::string> EgressRuleset(const std::vector<net::IpPrefix>& pod_cidrs,
                                          const std::vector<net::IpPrefix>& cluster_cidrs,
                                          const std::string& wg_interface, uint16_t wg_port);

// Replaces table `inet weft` (and an older agent's `ip weft`) with the ruleset in one nft
// transaction (idempotent).
absl::Status ApplyEgress(const std::string& ruleset);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_EGRESS_H_
