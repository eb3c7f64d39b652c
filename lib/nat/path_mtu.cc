#include "lib/nat/path_mtu.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/net/fragment_band.h"

namespace weft::nat {

PathMtu::PathMtu(int ceiling, PathMtuOptions o) : o_(o) { Candidates(ceiling); }

void PathMtu::Candidates(int ceiling) {
  cand_.clear();
  for (int s = o_.floor; s < ceiling; s += o_.step) {
    // Sizes of the fragmentation band pass a narrow path by fragmentation (their DF is
    // cleared): probing them would measure nothing.
    if (!net::InnerInFragmentBand(s)) cand_.push_back(s);
  }
  cand_.push_back(std::max(ceiling, 68));  // the ceiling itself, even below the floor
  if (mtu_ > cand_.back()) mtu_ = cand_.back();
}

void PathMtu::SetCeiling(int ceiling, int64_t now) {
  if (ceiling == cand_.back()) return;
  Candidates(ceiling);
  Search(-1, static_cast<int>(cand_.size()), now, "device MTU");
}

void PathMtu::PathChanged(int64_t now) {
  Search(-1, static_cast<int>(cand_.size()), now, "path changed");
  // A new path is probed once it has carried something back (a handshake, a keepalive):
  // probes into a path still being set up (a relay binding its channel) are lost for
  // reasons that have nothing to do with their size.
  wait_rx_ = true;
}

int PathMtu::IndexOf(int size) const {
  int idx = -1;
  for (int i = 0; i < static_cast<int>(cand_.size()) && cand_[i] <= size; ++i) idx = i;
  return idx;
}

void PathMtu::Search(int good, int bad, int64_t now, std::string why) {
  searching_ = true;
  why_ = std::move(why);
  good_ = good;
  bad_ = bad;
  next_search_ms_ = -1;
  // The largest untried size first: when nothing is wrong, one probe is the whole search.
  probe_ = bad_ - 1;
  tries_ = 0;
  sent_ms_ = -1;
  if (probe_ <= good_) Finish(now);
}

void PathMtu::Next(int64_t now) {
  tries_ = 0;
  sent_ms_ = -1;
  if (bad_ - good_ <= 1) {
    Finish(now);
    return;
  }
  // Nothing answered yet: the smallest size next, so that a path that carries nothing
  // (not yet, or no longer) ends the search instead of bisecting it down to the floor.
  probe_ = good_ < 0 ? 0 : good_ + (bad_ - good_) / 2;
}

void PathMtu::Finish(int64_t now) {
  searching_ = false;
  probe_ = -1;
  if (good_ < 0) {
    // Not even the smallest size came back: the path is down, which says nothing of its MTU.
    // A peer that never answers (an agent from before path MTU probing, during a rolling
    // upgrade, or one that turned it off) is asked less and less often: doubling from
    // retry_ms up to raise_ms.
    retry_wait_ms_ = retry_ ? std::min(retry_wait_ms_ * 2, o_.raise_ms) : o_.retry_ms;
    reason_ = absl::StrCat("no probe answered (", why_, ")");
    next_search_ms_ = now + retry_wait_ms_;
    retry_ = true;
    return;
  }
  retry_ = false;
  mtu_ = cand_[good_];
  reason_ = absl::StrCat(mtu_, good_ + 1 < static_cast<int>(cand_.size()) ? " (larger probes lost; " : " (", why_, ")");
  next_search_ms_ = good_ + 1 < static_cast<int>(cand_.size()) ? now + o_.raise_ms : -1;
}

void PathMtu::Observe(uint64_t tx, uint64_t rx, int64_t now) {
  if (wait_rx_ && sampled_ && rx > rx_seen_) wait_rx_ = false;
  rx_seen_ = rx;
  if (!sampled_ || tx < tx_mark_ || rx < rx_mark_) {  // first sample, or the peer's counters started over
    sampled_ = true;
    tx_mark_ = tx;
    rx_mark_ = rx;
    mark_ms_ = now;
    return;
  }
  if (now - mark_ms_ < o_.blackhole_ms) return;
  // In the last window a full packet's worth went out and nothing came back: the size in
  // force may have become too large (a link lowered, a new route). Confirm it, and search
  // below if it is lost. (Keepalives are 32 bytes: an idle pair never looks like this.)
  const uint64_t full = static_cast<uint64_t>(mtu_ > 0 ? mtu_ : ceiling());
  const bool suspect = rx == rx_mark_ && tx - tx_mark_ >= full;
  tx_mark_ = tx;
  rx_mark_ = rx;
  mark_ms_ = now;
  if (!suspect || searching_) return;
  if (last_confirm_ms_ >= 0 && now - last_confirm_ms_ < o_.confirm_gap_ms) return;
  last_confirm_ms_ = now;
  const int current = mtu_ > 0 ? IndexOf(mtu_) : static_cast<int>(cand_.size()) - 1;
  Search(-1, current + 1, now, "traffic went unanswered");
}

void PathMtu::Answered(int size, int64_t now) {
  if (!searching_) return;
  const int idx = IndexOf(size);
  if (idx < 0 || cand_[idx] != size || idx <= good_ || idx >= bad_) return;  // late, or never asked
  good_ = idx;
  Next(now);
}

void PathMtu::SendFailed(int size, int64_t now) {
  if (!searching_ || probe_ < 0 || cand_[probe_] != size) return;
  bad_ = probe_;
  Next(now);
}

std::optional<int> PathMtu::Tick(int64_t now) {
  if (!searching_ && next_search_ms_ >= 0 && now >= next_search_ms_) {
    const int n = static_cast<int>(cand_.size());
    if (mtu_ == 0 || retry_) {
      Search(-1, n, now, "retry");
    } else if (IndexOf(mtu_) < n - 1) {
      Search(IndexOf(mtu_), n, now, "raise");
    } else {
      next_search_ms_ = -1;
    }
  }
  if (!searching_ || wait_rx_) return std::nullopt;
  if (sent_ms_ >= 0 && now - sent_ms_ < o_.timeout_ms) return std::nullopt;
  if (sent_ms_ >= 0 && ++tries_ >= o_.tries) {
    bad_ = probe_;  // lost every time: too big
    Next(now);
    if (!searching_) return std::nullopt;
  }
  sent_ms_ = now;
  return cand_[probe_];
}

}  // namespace weft::nat
