#include "node-agent/peer_guard.h"

#include <algorithm>
#include <set>
#include <tuple>

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
  // Overlaps between peers: neither keeps the prefix. Prefixes are nested or disjoint,
  // so in order of first address (the wider first) the ones that contain a prefix are
  // exactly those still open on a stack: n log n, not a comparison per pair (this runs
  // on every delta, and a cluster may have thousands of nodes).
  struct Entry {
    net::IpPrefix prefix;
    const std::string* node;
    size_t index;  // in candidates[*node]
  };
  std::vector<Entry> sorted;
  for (const auto& [name, prefixes] : candidates) {
    for (size_t i = 0; i < prefixes.size(); ++i) sorted.push_back({prefixes[i], &name, i});
  }
  std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.prefix.address, a.prefix.length) < std::tie(b.prefix.address, b.prefix.length);
  });
  std::map<std::string, std::set<size_t>> drop;
  std::vector<const Entry*> open;  // each contains the next
  for (const Entry& e : sorted) {
    while (!open.empty() && !open.back()->prefix.Covers(e.prefix)) open.pop_back();
    for (const Entry* o : open) {
      if (*o->node == *e.node) continue;
      drop[*o->node].insert(o->index);
      drop[*e.node].insert(e.index);
      Refuse(g, *o->node, absl::StrCat("pod CIDR ", o->prefix.ToString(), " overlaps ", *e.node, "'s"));
      Refuse(g, *e.node, absl::StrCat("pod CIDR ", e.prefix.ToString(), " overlaps ", *o->node, "'s"));
    }
    open.push_back(&e);
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
