#include "lib/nat/fresh_flows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace weft::nat {

void FreshFlows::SetTargets(const std::vector<net::Endpoint>& targets) {
  targets_ = targets;
  for (const auto& t : targets_) last_used_.erase(t);
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
      if (std::find(targets_.begin(), targets_.end(), e) == targets_.end() && last_used_.size() < kMaxKnown) {
        last_used_.try_emplace(e);
      }
    }
  }
}

void FreshFlows::Offer(const std::vector<net::Endpoint>& destinations) {
  for (const auto& e : destinations) {
    if (!elsewhere_.contains(e) && std::find(targets_.begin(), targets_.end(), e) == targets_.end() && last_used_.size() < kMaxKnown) {
      last_used_.try_emplace(e);
    }
  }
}

void FreshFlows::Used(const net::Endpoint& peer, TimePoint now) {
  if (std::find(targets_.begin(), targets_.end(), peer) != targets_.end()) return;
  if (auto it = last_used_.find(peer); it != last_used_.end()) {
    it->second = now;
  } else if (last_used_.size() < kMaxKnown) {
    last_used_.emplace(peer, now);
  }
}

std::optional<net::Endpoint> FreshFlows::Pick(TimePoint now, bool urgent) const {
  std::optional<net::Endpoint> best;
  std::optional<TimePoint> best_used;  // unset: never used
  size_t fresh = 0;
  for (const auto& [e, used] : last_used_) {
    if (used && now - *used < fresh_after_) continue;
    ++fresh;
    if (!best || (best_used && (!used || *used < *best_used))) {
      best = e;
      best_used = used;
    }
  }
  if (!urgent && fresh < 2 && last_used_.size() > 1) return std::nullopt;
  return best;
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
    last_used_.erase(fresh->server);
    fresh = nullptr;
  }
  if (fresh != nullptr) {
    if (old && old_agree && *fresh->mapped != *old) {
      hard_on_new_flows_ = absl::StrCat("a new flow to ", fresh->server.ToString(), " was mapped to ",
                                        fresh->mapped->ToString(), ", while older flows keep ", old->ToString());
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
    round.reason = absl::StrCat("hard NAT: new flows are mapped per destination (", *hard_on_new_flows_, ")");
  } else if (round.mapping == Mapping::kNone) {
    hard_on_new_flows_.reset();  // no NAT in the path any more
  }
  return round;
}

}  // namespace weft::nat
