#include "node-agent/peer_guard.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace weft::agent {
namespace {

void Refuse(GuardedPeers& g, const std::string& node, const std::string& why) {
  std::string& r = g.refused[node];
  if (!r.empty()) r += "; ";
  r += why;
}

}  // namespace

GuardedPeers GuardPeers(const std::string& self, const std::vector<net::IpPrefix>& own, const std::string& own_key,
                        const std::vector<net::IpPrefix>& cluster, const std::map<std::string, v1::NodeInfo>& nodes) {
  GuardedPeers g;
  // Each peer's prefixes that pass on their own.
  std::map<std::string, std::vector<net::IpPrefix>> candidates;
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& [name, n] : nodes) {
    if (name == self) continue;
    if (!n.wireguard_public_key().empty()) by_key[n.wireguard_public_key()].push_back(name);
    for (const auto& text : n.pod_cidrs()) {
      auto p = net::IpPrefix::ParseNetwork(text);
      if (!p.ok()) {
        Refuse(g, name, absl::StrCat("pod CIDR \"", text.substr(0, 64), "\" is not a network"));
        continue;
      }
      bool inside = false;
      for (const auto& c : cluster) inside = inside || c.Covers(*p);
      if (p->length == 0 || !inside) {
        Refuse(g, name, absl::StrCat("pod CIDR ", p->ToString(), " is outside the cluster CIDRs"));
        continue;
      }
      bool ours = false;
      for (const auto& o : own) ours = ours || o.Overlaps(*p);
      if (ours) {
        Refuse(g, name, absl::StrCat("pod CIDR ", p->ToString(), " overlaps this node's own"));
        continue;
      }
      candidates[name].push_back(*p);
    }
  }
  // Overlaps between peers: neither keeps the prefix.
  std::map<std::string, std::set<size_t>> drop;
  for (auto a = candidates.begin(); a != candidates.end(); ++a) {
    for (auto b = std::next(a); b != candidates.end(); ++b) {
      for (size_t i = 0; i < a->second.size(); ++i) {
        for (size_t j = 0; j < b->second.size(); ++j) {
          if (!a->second[i].Overlaps(b->second[j])) continue;
          drop[a->first].insert(i);
          drop[b->first].insert(j);
          Refuse(g, a->first, absl::StrCat("pod CIDR ", a->second[i].ToString(), " overlaps ", b->first, "'s"));
          Refuse(g, b->first, absl::StrCat("pod CIDR ", b->second[j].ToString(), " overlaps ", a->first, "'s"));
        }
      }
    }
  }
  std::set<std::string> keyless;
  for (const auto& [key, names] : by_key) {
    if (key == own_key) {
      for (const auto& n : names) Refuse(g, n, "its WireGuard key is this node's");
      keyless.insert(names.begin(), names.end());
    } else if (names.size() > 1) {
      for (const auto& n : names) Refuse(g, n, "its WireGuard key is another peer's too");
      keyless.insert(names.begin(), names.end());
    }
  }
  for (const auto& [name, n] : nodes) {
    if (name == self) {
      g.nodes[name] = n;
      continue;
    }
    v1::NodeInfo out = n;
    out.clear_pod_cidrs();
    if (keyless.contains(name)) out.clear_wireguard_public_key();
    const auto& kept = candidates[name];
    for (size_t i = 0; i < kept.size(); ++i) {
      if (!drop[name].contains(i)) out.add_pod_cidrs(kept[i].ToString());
    }
    g.nodes[name] = std::move(out);
  }
  return g;
}

}  // namespace weft::agent
