// SNAT randomization on the node itself: finds the rules that would give the WireGuard
// port's packets a random source port (nftables, iptables-legacy, iptables-nft), and,
// when the admin allows it, installs Weft's port-preserving rule ahead of them: table
// `ip weft-snat`, a NAT chain at priority srcnat - 10 with one rule, `udp sport PORT
// masquerade` (no random flag: Linux keeps the port when it is free). It touches no other
// traffic, is replaced atomically (idempotent across restarts) and removed by Remove.
// Installing also deletes the port's existing UDP conntrack entries (conntrack -D), so
// flows already mapped to random ports are mapped again, this time keeping the port.
#ifndef WEFT_NODE_AGENT_SNAT_GUARD_H_
#define WEFT_NODE_AGENT_SNAT_GUARD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/nat/snat_rules.h"
#include "lib/net/ip_address.h"

namespace weft::agent {

// Runs the tools that exist on this node and returns every SNAT rule they list.
std::vector<nat::SnatRule> ReadNodeSnatRules();
// One line per rule, for reports and logs.
std::string DescribeRule(const nat::SnatRule& r);

// The nftables script that installs (or replaces) the mitigation for `port`. Pure.
std::string MitigationRuleset(uint16_t port);
absl::Status InstallMitigation(uint16_t port);
// Removes the table if it exists.
absl::Status RemoveMitigation();
bool MitigationInstalled();

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_SNAT_GUARD_H_
