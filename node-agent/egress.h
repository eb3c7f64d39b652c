// Masquerade for pod traffic leaving the cluster: pods have cluster-internal addresses,
// so what goes anywhere but another pod leaves with the node's address.
#ifndef WEFT_NODE_AGENT_EGRESS_H_
#define WEFT_NODE_AGENT_EGRESS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace weft::agent {

// The nftables ruleset (its own table, `ip weft`) for `pod_cidrs` of this node and the
// `cluster_cidrs` that stay unmasqueraded, and the TCP MSS clamp for SYNs forwarded into
// `wg_interface` (pure).
std::string EgressRuleset(const std::vector<std::string>& pod_cidrs, const std::vector<std::string>& cluster_cidrs,
                          const std::string& wg_interface);

// Replaces table `ip weft` with the ruleset in one nft transaction (idempotent).
absl::Status ApplyEgress(const std::string& ruleset);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_EGRESS_H_
