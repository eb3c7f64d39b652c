// The path watch: every 250 ms WireGuard's view of each peer (endpoint, counters,
// handshake) goes into the pair's path machine and its path MTU search; their actions
// (probe through the tunnel, punch, move, write the endpoint again) are carried out.
// Sockets and sends outside mu_; a move asks the reconciler.
#include <poll.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/stun/stun_message.h"
#include "lib/sys/steady_ms.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"

namespace weft::agent {
namespace {

// A punch is a STUN Binding request from the WireGuard port with a TTL of 2: it opens our
// NAT (the first hop) towards the peer and dies at the next router, before it can reach
// the peer's NAT and make it bind its public port to us (seeds/004).
constexpr int kPunchTtl = 2;

}  // namespace

void Agent::Punch(const std::vector<net::Endpoint>& to) {
  if (to.empty()) return;
  absl::MutexLock l(&punch_mu_);
  absl::Status s = absl::OkStatus();
  if (!punch_) {
    if (auto p = stun::SharedPortStun::Open(opts_.wg_port); p.ok()) {
      punch_.emplace(*std::move(p));
    } else {
      s = p.status();
    }
  }
  for (const auto& e : to) {
    if (s.ok()) s = punch_->Send(stun::BuildBindingRequest(stun::TxId{}), e, kPunchTtl);
  }
  if (!s.ok() && s.ToString() != punch_error_) Log(absl::StrCat("punching: ", s.ToString()));
  punch_error_ = s.ok() ? "" : s.ToString();
}

const std::string* Agent::NodeByTunnelAddress(const net::IpAddress& ip) const {
  for (const auto& [name, n] : nodes_) {
    if (name != opts_.node && TunnelAddress(n) == ip) return &name;
  }
  return nullptr;
}

void Agent::TakeProbeAnswers() {
  if (!probe_) return;
  std::vector<net::EchoReply> replies = probe_->Drain();
  if (replies.empty()) return;
  const int64_t now = sys::SteadyMs();
  absl::MutexLock l(&mu_);
  for (const net::EchoReply& r : replies) {
    auto it = probing_.find(r.seq);
    if (it == probing_.end()) continue;
    auto n = nodes_.find(it->second);
    // Only the peer's own tunnel address answers for the peer.
    if (n != nodes_.end() && TunnelAddress(n->second) == r.from) {
      if (auto pp = peers_->paths().find(it->second); pp != peers_->paths().end()) pp->second.ProbeAnswered(now);
    }
    probing_.erase(it);
  }
}

void Agent::TakeMtuAcks() {
  if (!mtu_prober_) return;
  // Only peer nodes' tunnel addresses are answered or heard: the socket is bound to the
  // device, so what arrives came through WireGuard from the holder of that peer's key.
  std::vector<net::IpAddress> peers;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [name, n] : nodes_) {
      if (name == opts_.node) continue;
      if (auto ip = TunnelAddressV4(n)) peers.push_back(*ip);
    }
  }
  auto acks = mtu_prober_->Serve(
      [&](const net::IpAddress& ip) { return std::find(peers.begin(), peers.end(), ip) != peers.end(); });
  if (acks.empty()) return;
  const int64_t now = sys::SteadyMs();
  absl::MutexLock l(&mu_);
  for (const MtuProber::Ack& a : acks) {
    const std::string* node = NodeByTunnelAddress(a.from);
    if (node == nullptr) continue;
    if (auto m = mtus_.find(*node); m != mtus_.end()) m->second.search.Answered(a.size, now);
  }
}

bool Agent::WatchMtu(const PlannedPeer& p, const wireguard::PeerStatus& d, int64_t now, std::vector<MtuSend>* send) {
  if (opts_.mtu_probe_port == 0 || tunnel_mtu_ <= 0 || !d.endpoint) return false;
  auto n = nodes_.find(p.node);
  auto to = n != nodes_.end() ? TunnelAddressV4(n->second) : std::nullopt;
  if (!to) return false;
  auto [it, fresh] = mtus_.try_emplace(p.node, PeerMtu{nat::PathMtu(tunnel_mtu_), ""});
  nat::PathMtu& search = it->second.search;
  search.SetCeiling(tunnel_mtu_, now);
  // Another endpoint or class is another path, with an MTU of its own.
  const std::string path = TruePathName(EndpointPath(d.endpoint), relay_ && relay_->tcp()) + " " + d.endpoint->ToString();
  if (path != it->second.path) {
    it->second.path = path;
    search.PathChanged(now);
  }
  search.Observe(d.tx_bytes, d.rx_bytes, now);
  if (auto size = search.Tick(now)) send->push_back({p.node, *to, *size});
  return search.mtu() != p.path_mtu;
}

void Agent::WatchPaths(std::stop_token stop) {
  while (!stop.stop_requested()) {
    // A tick every 250 ms; probe answers are taken as they arrive.
    const int64_t tick_end = sys::SteadyMs() + 250;
    for (int64_t left = 250; left > 0 && !stop.stop_requested(); left = tick_end - sys::SteadyMs()) {
      pollfd pfd[3] = {{probe_ ? probe_->fd() : -1, POLLIN, 0},
                       {mtu_prober_ ? mtu_prober_->fd() : -1, POLLIN, 0},
                       {probe_ ? probe_->fd6() : -1, POLLIN, 0}};
      if (pfd[0].fd < 0 && pfd[1].fd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(left, 50)));
        continue;
      }
      if (poll(pfd, 3, static_cast<int>(std::min<int64_t>(left, 50))) > 0) {
        TakeProbeAnswers();
        TakeMtuAcks();
      }
    }
    // Without a relay there is nothing to fall back to or move from: the path machines only
    // need the time (opening). The device is asked every tick all the same for the path
    // MTU searches (counters, and the endpoint each is for), unless discovery is off.
    bool sample_paths = false;
    bool mtu_discovery = false;
    {
      absl::MutexLock l(&mu_);
      sample_paths = relay_ != nullptr;
      mtu_discovery = opts_.mtu_probe_port != 0 && tunnel_mtu_ > 0;
    }
    if (mtu_discovery && !mtu_prober_) {
      if (auto m = MtuProber::Open(opts_.wg_interface, opts_.mtu_probe_port); m.ok()) {
        mtu_prober_.emplace(*std::move(m));
      } else if (m.status().ToString() != mtu_prober_error_) {
        mtu_prober_error_ = m.status().ToString();
        Log(absl::StrCat("path MTU probes: ", mtu_prober_error_));
      }
    }
    absl::StatusOr<wireguard::DeviceStatus> dev = wireguard::DeviceStatus{};
    if (sample_paths || opts_.mtu_probe_port != 0) dev = device_->Get();
    if (!dev.ok()) continue;
    const int64_t now = sys::SteadyMs();
    const auto wall_now = std::chrono::system_clock::now();
    bool reconcile = false;
    std::vector<std::pair<std::string, net::IpAddress>> probes;  // peer, its tunnel address
    std::vector<MtuSend> mtu_sends;
    std::vector<net::Endpoint> punch;
    {
      absl::MutexLock l(&mu_);
      const std::vector<PlannedPeer>& applied = peers_->applied();
      for (const auto& p : applied) {
        // WireGuard's view of the peer, for its MTU search and its path machine.
        const wireguard::PeerStatus* d = nullptr;
        for (const auto& s : dev->peers) {
          if (s.public_key == p.config.public_key) d = &s;
        }
        if (d != nullptr) {
          if (mtu_prober_) reconcile |= WatchMtu(p, *d, now, &mtu_sends);
          auto [seen, added] = seen_endpoints_.try_emplace(p.node, d->endpoint);
          // Moved since the last tick, or (a new peer) already elsewhere than we set.
          if (added ? d->endpoint != p.config.endpoint : seen->second != d->endpoint) {
            seen->second = d->endpoint;
            health_now_ = true;
          }
        }
        auto pp = peers_->paths().find(p.node);
        if (pp == peers_->paths().end()) continue;
        if (sample_paths && d != nullptr) {
          nat::PeerSample sample{.rx_bytes = d->rx_bytes, .tx_bytes = d->tx_bytes,
                                 .endpoint_path = EndpointPath(d->endpoint)};
          if (d->last_handshake.time_since_epoch().count() != 0) {
            sample.last_handshake_ms =
                now - std::chrono::duration_cast<std::chrono::milliseconds>(wall_now - d->last_handshake).count();
          }
          pp->second.Observe(sample, now);
        }
        nat::PeerPath::Actions a = pp->second.Tick(now);
        reconcile |= a.reconfigure;
        if (a.set_endpoint && p.config.endpoint) {
          reassert_.insert(p.node);
          reconcile = true;
        }
        if (a.probe) {
          auto n = nodes_.find(p.node);
          if (n != nodes_.end()) {
            if (auto to = TunnelAddress(n->second)) probes.emplace_back(p.node, *to);
          }
        }
        for (auto& e : a.punch) punch.push_back(e);
      }
      if (seen_endpoints_.size() > applied.size()) {  // peers that went
        std::set<std::string> live;
        for (const auto& p : applied) live.insert(p.node);
        std::erase_if(seen_endpoints_, [&](const auto& kv) { return !live.contains(kv.first); });
      }
    }
    // The sends, outside mu_.
    if (!probes.empty() && !probe_) {
      if (auto t = TunnelProbe::Open(opts_.wg_interface); t.ok()) {
        probe_.emplace(*std::move(t));
      } else {
        Log(absl::StrCat("path probes: ", t.status().ToString()));
      }
    }
    for (const auto& [node, to] : probes) {
      if (!probe_) break;
      probing_.erase(static_cast<uint16_t>(probe_seq_ - 1024));  // answers that never came
      probing_[probe_seq_] = node;
      (void)probe_->Send(to, probe_seq_++);
    }
    for (const MtuSend& m : mtu_sends) {
      if (absl::Status s = mtu_prober_->Send(m.to, mtu_seq_++, m.size); absl::IsOutOfRange(s)) {
        absl::MutexLock l(&mu_);
        if (auto it = mtus_.find(m.node); it != mtus_.end()) it->second.search.SendFailed(m.size, now);
      }
    }
    Punch(punch);
    if (reconcile) AskReconcile();
  }
}

}  // namespace weft::agent
