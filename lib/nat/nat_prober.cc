#include "lib/nat/nat_prober.h"

#include <algorithm>

namespace weft::nat {

NatProber::NatProber(Options opts, SendFn send, TxIdFn new_tx)
    : opts_(std::move(opts)), send_(std::move(send)), new_tx_(std::move(new_tx)) {
  obs_.local_port = opts_.local_port;
  obs_.local_ips = opts_.local_ips;
  if (opts_.fresh && std::find(opts_.targets.begin(), opts_.targets.end(), *opts_.fresh) == opts_.targets.end()) {
    opts_.targets.push_back(*opts_.fresh);
  }
  for (const auto& t : opts_.targets) obs_.probes.push_back(Probe{.server = t, .fresh = opts_.fresh == t});
}

void NatProber::SendTo(size_t target, Clock::time_point now) {
  // A fresh transaction per attempt: a late answer to an earlier attempt still counts,
  // and a NAT that maps per destination is seen on every attempt alike.
  stun::TxId tx = new_tx_();
  pending_[tx] = Sent{target, now};
  std::vector<uint8_t> req = stun::BuildBindingRequest(tx);
  ++counters_.sent;
  send_(req, opts_.targets[target]);
}

void NatProber::Start(Clock::time_point now) {
  start_ = now;
  started_ = true;
  if (opts_.targets.empty()) {
    done_ = true;
    return;
  }
  for (size_t i = 0; i < opts_.targets.size(); ++i) SendTo(i, now);
}

bool NatProber::OnPacket(absl::Span<const uint8_t> pkt, const net::Endpoint& from, Clock::time_point now) {
  auto resp = stun::ParseBindingResponse(pkt);
  if (!resp.ok()) {
    ++counters_.malformed;
    return false;
  }
  auto it = pending_.find(resp->tx_id);
  if (it == pending_.end()) {
    ++counters_.unknown_tx;
    return false;
  }
  const size_t target = it->second.target;
  if (from != opts_.targets[target]) {
    ++counters_.wrong_source;
    return false;
  }
  Probe& p = obs_.probes[target];
  if (!p.mapped) {
    p.mapped = resp->mapped;
    p.other_address = resp->other_address;
    p.rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - it->second.at);
    ++counters_.answers;
  }
  if (std::all_of(obs_.probes.begin(), obs_.probes.end(), [](const Probe& q) { return q.mapped.has_value(); })) {
    done_ = true;
  }
  return true;
}

void NatProber::OnTimer(Clock::time_point now) {
  if (!started_ || done_) return;
  if (now - start_ >= opts_.deadline) {
    done_ = true;
    return;
  }
  while (next_resend_ < opts_.resend_at.size() && now - start_ >= opts_.resend_at[next_resend_]) {
    ++next_resend_;
    for (size_t i = 0; i < opts_.targets.size(); ++i) {
      if (!obs_.probes[i].mapped) SendTo(i, now);
    }
  }
}

Clock::time_point NatProber::NextTimer() const {
  if (next_resend_ < opts_.resend_at.size()) return start_ + opts_.resend_at[next_resend_];
  return start_ + opts_.deadline;
}

Verdict NatProber::verdict() const { return Classify(obs_); }

}  // namespace weft::nat
