// libFuzzer target: what a controller (or whoever speaks for it) sends an agent. Bytes
// become a ControllerMessage; the agent's own checks of peers (GuardPeers) and the
// egress ruleset built from a Welcome hold up, and what passes the guard is safe: every
// pod CIDR kept is inside the cluster CIDR and over none of ours.
#include <cstddef>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "node-agent/egress.h"
#include "node-agent/peer_guard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::v1::ControllerMessage m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return 0;
  const weft::net::IpPrefix cluster = *weft::net::IpPrefix::Parse("10.244.0.0/16");
  const weft::net::IpPrefix own = *weft::net::IpPrefix::Parse("10.244.1.0/24");
  std::map<std::string, weft::v1::NodeInfo> nodes;
  const auto& list = m.has_snapshot() ? m.snapshot().nodes() : m.delta().upserted();
  for (const auto& n : list) nodes[n.name()] = n;
  const weft::agent::GuardedPeers g = weft::agent::GuardPeers("self", {own}, std::string(32, 's'), {cluster}, nodes);
  for (const auto& [name, n] : g.nodes) {
    if (name == "self") continue;
    for (const auto& c : n.pod_cidrs()) {
      auto p = weft::net::IpPrefix::ParseNetwork(c);
      if (!p.ok() || !cluster.Covers(*p) || own.Overlaps(*p)) __builtin_trap();
    }
  }
  if (m.has_reprobe()) {  // what the agent takes of a Reprobe: an endpoint, parsed
    (void)weft::net::IpAddress::Parse(m.reprobe().seen().ip());
    (void)absl::CHexEscape(m.reprobe().reason().substr(0, 200));
  }
  if (m.has_welcome()) {
    std::vector<weft::net::IpPrefix> typed;
    for (const auto& c : m.welcome().cluster_cidrs()) {
      if (auto p = weft::net::IpPrefix::ParseNetwork(c); p.ok()) typed.push_back(*p);
    }
    (void)weft::agent::EgressRuleset(typed, typed, "weft0", 51820);
  }
  return 0;
}
