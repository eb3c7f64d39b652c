// The node's own source-NAT rules, as nftables (`nft -j list ruleset`) and iptables
// (`iptables-legacy-save -t nat`, `iptables-nft-save -t nat`) list them, and which of
// them would give the WireGuard port's packets a random source port (MASQUERADE or SNAT
// with --random / --random-fully: kube-proxy, the AWS VPC CNI, Docker and friends).
// Pure: text in, rules out.
#ifndef WEFT_LIB_NAT_SNAT_RULES_H_
#define WEFT_LIB_NAT_SNAT_RULES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "lib/net/ip_address.h"

namespace weft::nat {

struct SnatRule {
  std::string source;    // "nftables", "iptables-legacy", "iptables-nft"
  std::string location;  // "ip nat POSTROUTING", "table ip nat chain post"
  std::string text;      // the rule, as the tool listed it (or a summary)
  bool randomizes = false;
  // What the rule matches on, where Weft can tell (unset: any). A negated match is
  // kept as "may match" (conservative: a rule is only ruled out when it cannot match).
  std::optional<std::string> protocol;   // "udp", "tcp", ...
  std::optional<uint16_t> source_port;
  std::vector<net::IpPrefix> source_prefixes;
  friend bool operator==(const SnatRule&, const SnatRule&) = default;
};

// SNAT/masquerade rules of `nft -j list ruleset` (rules iptables-nft added show up as
// opaque "xt" expressions there; read those with ParseIptablesSave). Bad JSON: none.
std::vector<SnatRule> ParseNftRuleset(absl::string_view json);
// SNAT/MASQUERADE rules of `iptables-save -t nat` output; `source` names the tool.
std::vector<SnatRule> ParseIptablesSave(absl::string_view text, absl::string_view source);

// The randomizing rules that could rewrite UDP packets from `port` sent from one of
// `node_ips` (the WireGuard port's traffic).
std::vector<SnatRule> RandomizingRulesFor(const std::vector<SnatRule>& rules, uint16_t port,
                                          const std::vector<net::IpAddress>& node_ips);

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_SNAT_RULES_H_
