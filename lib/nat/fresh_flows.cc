#include "lib/nat/fresh_flows.h"

#include <algorithm>

namespace weft::nat {

void FreshFlows::SetTargets(const std::vector<net::Endpoint>& targets) {
  targets_ = targets;
  for (const auto& t : targets_) candidates_.erase(t);
}

bool FreshFlows::IsTarget(const net::Endpoint& e) const {
  return std::find(targets_.begin(), targets_.end(), e) != targets_.end();
}

void FreshFlows::Add(const net::Endpoint& e, bool learned) {
  if (elsewhere_.contains(e) || IsTarget(e)) return;
  if (auto it = candidates_.find(e); it != candidates_.end()) {
    it->second.learned |= learned;
  } else if (candidates_.size() < kMaxKnown) {
    candidates_.emplace(e, Candidate{.learned = learned});
  }
}

void FreshFlows::Learn(const Observations& obs) {
  for (const Probe& p : obs.probes) {
    if (!p.mapped || !p.other_address || p.other_address->ip == p.server.ip || p.other_address->port == p.server.port) {
      continue;
    }
    // RFC 5780 section 2: the server answers on its primary and alternate address, each
    // on its primary and alternate port.
    const net::Endpoint& o = *p.other_address;
    for (const net::Endpoint& e : {net::Endpoint{p.server.ip, o.port}, net::Endpoint{o.ip, p.server.port}, o}) {
      Add(e, /*learned=*/true);
    }
  }
}

void FreshFlows::Offer(const std::vector<net::Endpoint>& destinations) {
  for (const auto& e : destinations) Add(e, /*learned=*/false);
}

void FreshFlows::Use(const net::Endpoint& e, TimePoint now) {
  if (IsTarget(e)) return;
  if (auto it = candidates_.find(e); it != candidates_.end()) {
    it->second.used = now;
  } else if (candidates_.size() < kMaxKnown) {
    candidates_.emplace(e, Candidate{.used = now});
  }
}

void FreshFlows::Probed(const net::Endpoint& to, TimePoint now) {
  Use(to, now);
  if (auto it = candidates_.find(to); it != candidates_.end() && it->second.learned) learned_probed_ = now;
}

void FreshFlows::Solicited(const net::Endpoint& from, TimePoint now) { Use(from, now); }

std::optional<net::Endpoint> FreshFlows::Pick(TimePoint now) const {
  const std::pair<const net::Endpoint, Candidate>* best = nullptr;
  // Offered before learned; never used before used; then used longest ago.
  auto better = [](const Candidate& a, const Candidate& b) {
    if (a.learned != b.learned) return !a.learned;
    if (a.used.has_value() != b.used.has_value()) return !a.used.has_value();
    return a.used && *a.used < *b.used;
  };
  for (const auto& c : candidates_) {
    if (c.second.used && now - *c.second.used < fresh_after_) continue;
    if (best == nullptr || better(c.second, best->second)) best = &c;
  }
  if (best == nullptr) return std::nullopt;
  return best->first;
}

bool FreshFlows::QuietForFilteringTests(TimePoint now) const {
  return !learned_probed_ || now - *learned_probed_ >= fresh_after_;
}

void FreshFlows::Sighted(const net::Endpoint& seen) {
  if (std::find(sighted_.begin(), sighted_.end(), seen) != sighted_.end()) return;
  if (sighted_.size() >= 16) sighted_.erase(sighted_.begin());
  sighted_.push_back(seen);
}

Verdict FreshFlows::Settle(Verdict round, const Observations& obs) {
  const Probe* fresh = nullptr;
  std::optional<net::Endpoint> old;  // the one endpoint every other answer saw, if they agree
  bool old_agree = true;
  for (const Probe& p : obs.probes) {
    if (!p.mapped) continue;
    if (p.fresh) {
      fresh = &p;
    } else if (!old) {
      old = p.mapped;
    } else if (*old != *p.mapped) {
      old_agree = false;
    }
  }
  if (fresh != nullptr && old && fresh->mapped->ip != old->ip) {
    // Not through this NAT (Classify left it out too): a destination to forget.
    elsewhere_.insert(fresh->server);
    candidates_.erase(fresh->server);
    fresh = nullptr;
  }
  if (fresh != nullptr && std::find(sighted_.begin(), sighted_.end(), *fresh->mapped) != sighted_.end()) {
    // The collided mapping (see Sighted): the verdict of the old flows stands.
    Observations without = obs;
    for (Probe& p : without.probes) {
      if (p.fresh) p.mapped.reset();
    }
    return Settle(Classify(without), without);
  }
  if (fresh != nullptr) {
    if (old && old_agree && *fresh->mapped != *old) {
      hard_on_new_flows_ = NewFlowsHardReason(fresh->server, *fresh->mapped, *old);
    } else {
      hard_on_new_flows_.reset();
    }
    return round;
  }
  // No fresh flow this round: the old flows alone look as they did before the NAT
  // changed, so the last fresh flow's word stands.
  if (hard_on_new_flows_ && (round.mapping == Mapping::kEndpointIndependent || round.mapping == Mapping::kUnknown)) {
    round.mapping = Mapping::kEndpointDependent;
    round.reflexive.reset();
    round.port_preserved = false;
    round.reason = *hard_on_new_flows_;
  } else if (round.mapping == Mapping::kNone) {
    hard_on_new_flows_.reset();  // no NAT in the path any more
  }
  return round;
}

}  // namespace weft::nat
