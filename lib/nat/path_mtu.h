// One peer's path MTU, found by probing through the tunnel (pure: no sockets, no clock).
// In the spirit of RFC 8899 (datagram PLPMTUD): padded probes with DF set go through
// WireGuard to the peer's agent, which acks what arrived; ICMP is never needed, so links
// that drop "fragmentation needed" (most of the internet's middleboxes) can't blackhole
// full-size packets.
//
// Candidate sizes are the floor (1024), every multiple of 16 above it (WireGuard pads its
// plaintext to 16 bytes, so sizes within one block cost the same on the wire) but those
// of the fragmentation band (1232-1280: lib/net/fragment_band.h), and the ceiling (the
// device's MTU). A path that carries 1232-1295 bytes is found at 1216. A search tries the largest first (one probe when nothing is
// wrong), then the smallest, then bisects; a size is too big when `tries` probes of it go
// unanswered. A
// search in which nothing at all is answered says nothing about the MTU (the path is down:
// the path state machine's business) and changes nothing.
//
// Searches start when the path changes (another endpoint, relay or direct), when traffic
// looks blackholed (a full packet's worth sent in a window of `blackhole_ms` and nothing back in it: the
// current size is confirmed first), and every `raise_ms` below the ceiling (the path may
// have grown). At rest that is one probe per 10 minutes at most.
#ifndef WEFT_LIB_NAT_PATH_MTU_H_
#define WEFT_LIB_NAT_PATH_MTU_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weft::nat {

struct PathMtuOptions {
  int floor = 1024;
  int step = 16;
  int64_t timeout_ms = 400;        // a probe unanswered this long is lost
  int tries = 2;                   // lost this many times: too big
  int64_t blackhole_ms = 1000;     // a full packet's worth sent in such a window, nothing back: confirm
  int64_t confirm_gap_ms = 5000;   // at most one blackhole confirmation per this
  int64_t raise_ms = 600000;       // below the ceiling: try higher again after this
  int64_t retry_ms = 5000;         // a search that got no answer at all: again after this, doubling
};

class PathMtu {
 public:
  explicit PathMtu(int ceiling, PathMtuOptions o = {});

  // The device's MTU changed: the candidates change and a search starts (same: nothing).
  void SetCeiling(int ceiling, int64_t now);
  // The path changed (another endpoint, or between direct and relay): search again, once
  // the path has carried something back (rx moved). The last size found stays in force
  // until the search ends.
  void PathChanged(int64_t now);
  // WireGuard's counters for the peer.
  void Observe(uint64_t tx_bytes, uint64_t rx_bytes, int64_t now);
  // The peer acked a probe that arrived as `size` bytes.
  void Answered(int size, int64_t now);
  // A probe of this many bytes (the IPv4 datagram) to send now, if one is due.
  std::optional<int> Tick(int64_t now);
  // The local send failed at once (EMSGSIZE: larger than the device): too big.
  void SendFailed(int size, int64_t now);

  // The path MTU found (0: not yet known; the device's MTU applies).
  int mtu() const { return mtu_; }
  bool searching() const { return searching_; }
  int ceiling() const { return cand_.back(); }
  // Why the last search ended as it did ("" before any).
  const std::string& reason() const { return reason_; }

 private:
  void Candidates(int ceiling);
  void Search(int good, int bad, int64_t now, std::string why);
  void Next(int64_t now);
  void Finish(int64_t now);
  int IndexOf(int size) const;

  PathMtuOptions o_;
  std::vector<int> cand_;
  int mtu_ = 0;
  std::string reason_, why_;
  // The search: cand_[good] answered (or assumed), cand_[bad] is too big (bad == size: none).
  bool searching_ = false;
  int good_ = -1, bad_ = 0, probe_ = -1, tries_ = 0;
  int64_t sent_ms_ = -1;
  int64_t next_search_ms_ = -1;    // a raise or retry due then (-1: none)
  int64_t last_confirm_ms_ = -1;
  bool retry_ = false;             // the last search got no answer at all
  int64_t retry_wait_ms_ = 0;
  bool wait_rx_ = false;           // a new path: probing waits for it to carry something back
  uint64_t rx_seen_ = 0;
  // The counters at the start of the current blackhole window.
  bool sampled_ = false;
  uint64_t tx_mark_ = 0, rx_mark_ = 0;
  int64_t mark_ms_ = 0;
};

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_PATH_MTU_H_
