#include "lib/nat/peer_path.h"

#include <algorithm>

namespace weft::nat {

std::string_view PathName(Path p) {
  switch (p) {
    case Path::kDirect: return "direct";
    case Path::kRelay: return "relay";
    case Path::kNone: break;
  }
  return "none";
}

std::string_view PeerPath::StateName(State s) {
  switch (s) {
    case State::kPending: return "pending";
    case State::kOpening: return "opening";
    case State::kDirect: return "direct";
    case State::kRelayed: return "relayed";
    case State::kFallback: return "fallback";
    case State::kUpgrading: return "upgrading";
  }
  return "?";
}

void PeerPath::Enter(State s, int64_t now, std::string why) {
  state_ = s;
  entered_ms_ = now;
  why_ = std::move(why);
  pending_change_ = true;
  doubt_since_ = -1;
  last_probe_ms_ = -1;
  unanswered_tx_ms_ = -1;
  reasserted_ = 0;
}

void PeerPath::FallBack(int64_t now, std::string why) {
  backoff_ms_ = backoff_ms_ == 0 ? o_.retry_first_ms : std::min(backoff_ms_ * 2, o_.retry_max_ms);
  retry_at_ms_ = now + backoff_ms_;
  Enter(State::kFallback, now, std::move(why));
}

std::vector<net::Endpoint> PeerPath::Decide(const PairDecision& d, int64_t now) {
  if (decision_ == d) return {};
  const bool was_direct = decision_ && decision_->direct;
  decision_ = d;
  pending_change_ = true;
  if (!d.direct) {
    backoff_ms_ = 0;
    Enter(State::kRelayed, now, "");
    return {};
  }
  switch (state_) {
    case State::kPending:
      if (d.punch.empty()) {
        Enter(State::kDirect, now, "");  // nothing between us (same LAN, public peer with no punch)
      } else {
        Enter(State::kOpening, now, "opening the NATs before the first packet");
      }
      break;
    case State::kRelayed:
    case State::kFallback:
      // A new decision ends a fall-back. Moving off the relay punches first, so that the
      // first direct packets find both NATs open (the peer punches too: it got the same
      // decision).
      backoff_ms_ = was_direct ? backoff_ms_ : 0;
      Enter(State::kUpgrading, now, "probing the direct path before moving");
      break;
    case State::kOpening:
    case State::kDirect:
    case State::kUpgrading:
      break;  // the endpoint may have changed: reconfigure (above)
  }
  if (state_ != State::kOpening && state_ != State::kUpgrading) return {};
  last_punch_ms_ = now;
  return d.punch;
}

void PeerPath::SetRelay(std::optional<net::Endpoint> proxy, int64_t now) {
  if (relay_ == proxy) return;
  relay_ = proxy;
  if (state_ == State::kRelayed) pending_change_ = true;
  if (!relay_ && state_ == State::kFallback) {
    Enter(State::kDirect, now, "");  // nothing else to use
  } else if (state_ == State::kFallback || state_ == State::kUpgrading) {
    pending_change_ = true;
  }
}

void PeerPath::Observe(const PeerSample& s, int64_t now) {
  if (!sampled_) {
    sampled_ = true;
    rx_ = s.rx_bytes;
    tx_ = s.tx_bytes;
    rx_moved_ms_ = now;
  } else {
    if (s.rx_bytes != rx_) {
      rx_moved_ms_ = now;
      unanswered_tx_ms_ = -1;
    } else if (s.tx_bytes != tx_ && unanswered_tx_ms_ < 0) {
      unanswered_tx_ms_ = now;
    }
    rx_ = s.rx_bytes;
    tx_ = s.tx_bytes;
  }
  if (s.last_handshake_ms > handshake_ms_) {
    handshake_ms_ = s.last_handshake_ms;
    // A handshake is a round trip over WireGuard's endpoint: on a direct endpoint, proof.
    if (doubt_since_ >= 0 && handshake_ms_ >= doubt_since_ && s.endpoint_path == Path::kDirect) ProbeAnswered(now);
  }
  if (s.endpoint_path != seen_) {
    seen_ = s.endpoint_path;
    seen_since_ms_ = now;
    if (seen_ == Path::kDirect) reasserted_ = 0;
  }
}

void PeerPath::ProbeAnswered(int64_t now) {
  doubt_since_ = -1;
  last_probe_ms_ = -1;
  unanswered_tx_ms_ = -1;
  answered_ms_ = now;
}

PeerPath::Actions PeerPath::Tick(int64_t now) {
  Actions a;
  const int64_t seen_for = now - std::max(seen_since_ms_, entered_ms_);
  switch (state_) {
    case State::kDirect:
      if (kick_ && now > entered_ms_) {
        // The tick after the endpoint was written: a packet through the tunnel, so that
        // WireGuard starts its handshake over the new endpoint now (setting an endpoint
        // sends nothing by itself) while both sides' punches hold the way open, not at
        // the next keepalive or the 5 s retry of a handshake sent elsewhere.
        kick_ = false;
        if (handshake_ms_ < entered_ms_) a.probe = true;
      }
      if (!relay_) {
        doubt_since_ = -1;  // nothing to fall back to: the direct path is all there is
        break;
      }
      if (seen_ == Path::kRelay && decision_->send_to && reasserted_ < 2 && seen_for >= o_.follow_ms / 3) {
        // WireGuard roamed to packets the peer sent through the relay (crossing ours, as
        // both move): this side sends first, so say where again; the peer roams to it.
        a.set_endpoint = true;
        ++reasserted_;
        seen_since_ms_ = now;
        break;
      }
      if (seen_ == Path::kRelay && seen_for >= o_.follow_ms) {
        // The peer sends through the relay (it found the direct path dead): WireGuard
        // already answers there. Follow, and try direct again later.
        FallBack(now, "the peer moved to the relay");
        break;
      }
      if (seen_ != Path::kDirect) break;
      if (doubt_since_ < 0 && unanswered_tx_ms_ >= 0 && now - unanswered_tx_ms_ >= o_.suspect_ms &&
          now - rx_moved_ms_ >= o_.suspect_ms) {
        doubt_since_ = now;  // sent, and nothing back: ask the peer
      }
      if (doubt_since_ >= 0) {
        if (now - doubt_since_ >= o_.probe_timeout_ms) {
          FallBack(now, "the direct path stopped answering");
          break;
        }
        if (last_probe_ms_ < 0 || now - last_probe_ms_ >= o_.probe_every_ms) {
          a.probe = true;
          last_probe_ms_ = now;
        }
      } else if (backoff_ms_ != 0 && now - entered_ms_ >= o_.stable_ms) {
        backoff_ms_ = 0;  // it held: a later fall-back starts the backoff over
      }
      break;
    case State::kFallback:
      if (seen_ == Path::kDirect && seen_since_ms_ > entered_ms_ && decision_ && decision_->direct) {
        // The peer's direct packets arrive (it moved back first): WireGuard roamed to them.
        Enter(State::kDirect, now, "");
      } else if (now >= retry_at_ms_) {
        Enter(State::kUpgrading, now, "probing the direct path before moving");
        a.punch = decision_->punch;
        last_punch_ms_ = now;
      } else if (last_punch_ms_ < 0 || now - last_punch_ms_ >= o_.keep_open_ms) {
        a.punch = decision_->punch;  // keep our NAT open for the peer's retry
        last_punch_ms_ = now;
      }
      break;
    case State::kOpening:
    case State::kUpgrading:
      if (now - entered_ms_ >= o_.punch_ms + (state_ == State::kOpening && decision_->yield ? o_.yield_ms : 0)) {
        Enter(State::kDirect, now, "");
        kick_ = true;
      } else if (decision_) {
        a.punch = decision_->punch;
        last_punch_ms_ = now;
      }
      break;
    case State::kPending:
    case State::kRelayed:
      break;
  }
  a.reconfigure = pending_change_;
  pending_change_ = false;
  return a;
}

Path PeerPath::path() const {
  switch (state_) {
    case State::kPending: return Path::kNone;
    case State::kDirect: return Path::kDirect;
    case State::kRelayed: return relay_ ? Path::kRelay : Path::kNone;
    case State::kFallback: return relay_ ? Path::kRelay : Path::kDirect;
    case State::kOpening: return Path::kNone;  // nothing sent yet (a new pair's relay channel is not bound)
    case State::kUpgrading: return relay_ ? Path::kRelay : Path::kNone;  // nothing sent direct yet
  }
  return Path::kNone;
}

std::optional<net::Endpoint> PeerPath::endpoint() const {
  switch (path()) {
    case Path::kDirect: return decision_ ? decision_->send_to : std::nullopt;
    case Path::kRelay: return relay_;
    case Path::kNone: break;
  }
  return std::nullopt;
}

std::string PeerPath::reason() const {
  const std::string decided = decision_ ? decision_->reason : "not decided yet";
  switch (state_) {
    case State::kPending: return decided;
    case State::kDirect: return why_.empty() ? decided : why_ + " (" + decided + ")";
    case State::kRelayed: return relay_ ? decided : decided + " (no relay available: no path)";
    case State::kFallback: return why_ + ": relayed, direct retried with backoff (" + decided + ")";
    case State::kOpening:
    case State::kUpgrading: return why_ + " (" + decided + ")";
  }
  return decided;
}

}  // namespace weft::nat
