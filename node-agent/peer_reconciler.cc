#include "node-agent/peer_reconciler.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace weft::agent {

PeerReconciler::Step PeerReconciler::Plan(const Inputs& in, int64_t now) {
  static const std::map<std::string, v1::NodeInfo> kNoNodes;
  static const std::map<std::string, v1::PairDirective> kNoDirectives;
  auto via_relay = [&in](const v1::NodeInfo& peer) -> std::optional<net::Endpoint> {
    auto it = in.proxies.find(peer.name());
    if (it == in.proxies.end()) return std::nullopt;
    return it->second;
  };
  Step step;
  step.desired = PlanPeers(self_, in.nodes ? *in.nodes : kNoNodes, in.directives ? *in.directives : kNoDirectives,
                           in.self_info, applied_, via_relay);
  std::set<std::string> seen;
  for (auto& p : step.desired) {
    if (auto m = in.path_mtus.find(p.node); m != in.path_mtus.end()) p.path_mtu = m->second;
    if (!p.decision) continue;
    seen.insert(p.node);
    auto [it, fresh] = paths_.try_emplace(p.node);
    nat::PeerPath& pp = it->second;
    auto proxy = in.proxies.find(p.node);
    pp.SetRelay(proxy != in.proxies.end() ? std::optional<net::Endpoint>(proxy->second) : std::nullopt, now);
    nat::PairDecision decision = *p.decision;
    if (fresh) {
      // A peer this agent adopted with the device, already sending direct: its NATs are
      // open and WireGuard has a session, so there is nothing to open (a restarted agent
      // must not pause a working pair).
      for (const auto& cur : applied_) {
        if (cur.config.public_key == p.config.public_key && EndpointPath(cur.config.endpoint) == nat::Path::kDirect) {
          decision.punch.clear();
        }
      }
    }
    for (auto& e : pp.Decide(decision, now)) step.punch.push_back(e);
    p.path = std::string(nat::PathName(pp.path()));
    p.config.endpoint = pp.endpoint();
    p.reason = pp.reason();
    // Opening (nothing sent yet): the peer is in the device without an endpoint, so the
    // peer's first handshake (it may finish opening first) is answered rather than dropped,
    // and without a keepalive: WireGuard sends one at once when the interval is set (0 →
    // 25 s), and one without an endpoint would fail and hold back the next handshake for
    // 5 s (REKEY_TIMEOUT); set with the endpoint, it is the pair's first packet.
    if (pp.state() == nat::PeerPath::State::kOpening) p.config.persistent_keepalive = 0;
  }
  std::erase_if(paths_, [&](const auto& kv) { return !seen.contains(kv.first); });
  step.diff = DiffPeers(applied_, step.desired);
  for (const auto& p : step.desired) {
    const PlannedPeer* old = nullptr;
    for (const auto& a : applied_) {
      if (a.node == p.node) old = &a;
    }
    if (old == nullptr || old->path != p.path || old->reason != p.reason) {
      step.changes.push_back(absl::StrCat("peer ", p.node, ": ", p.path, " (", p.reason, ")"));
    }
  }
  return step;
}

absl::Status PeerReconciler::Reconcile(const Inputs& in, int64_t now, wireguard::Device& device,
                                       std::vector<net::Endpoint>* punch) {
  Step step = Plan(in, now);
  if (!step.diff.peers.empty()) {
    if (absl::Status s = device.Set(step.diff); !s.ok()) return s;
  }
  if (punch != nullptr) *punch = step.punch;
  Commit(std::move(step));
  return absl::OkStatus();
}

}  // namespace weft::agent
