// One peer's path, as a state machine (pure: no sockets, no clock; the agent feeds it
// the pair's decision, WireGuard's view of the peer, probe answers and the time, and
// carries out the actions it returns).
//
//   pending ──decided relay──▶ relayed ◀─────────────────────┐
//      │                          │ decided direct             │ decided relay
//      │ decided direct           ▼                            │
//      └──▶ opening ──(punched)─▶ upgrading ──(punched)──▶ direct
//           (nothing sent yet)       (still on the relay)   ▲
//                                 ▲                            │ dead: probes unanswered
//                                 └── fallback ◀───────────────┘
//                                    (retry with backoff)
//
// Collision-free punching: before this side's WireGuard sends its first packet towards
// the peer (a new pair, or a move off the relay), it punches for `punch_ms`: packets from
// the WireGuard port that open our NAT for the peer but (sent with a small TTL by the
// agent) die before they reach the peer's NAT. The peer does the same. So each side's
// mapping exists before the other's first real packet arrives, and a NAT that does not
// drop unsolicited inbound UDP never binds its public port to the peer's packet (the
// conntrack collision of seeds/004). While relayed after a fall-back, the punch is kept
// up (every `keep_open_ms`), so a retry finds both NATs open.
//
// Liveness comes from evidence a one-way WireGuard keepalive cannot fake: an
// authenticated probe through the tunnel answered by the peer (the agent pings the peer
// node's tunnel address), or a handshake completed since the doubt began. Traffic
// counters only raise the doubt (we sent, nothing came back): an idle pair whose
// keepalives cross is probed, answers, and stays direct.
//
// WireGuard roams: it sends to where the peer's last authenticated packet came from. So
// the endpoint class WireGuard reports is the truth, and the machine follows it: a
// decided-direct pair whose peer moved to the relay follows to the relay (and retries
// direct later); a pair on the relay that receives the peer's direct packets is direct.
#ifndef WEFT_LIB_NAT_PEER_PATH_H_
#define WEFT_LIB_NAT_PEER_PATH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/net/endpoint.h"

namespace weft::nat {

enum class Path { kNone, kDirect, kRelay };
std::string_view PathName(Path p);  // "none", "direct", "relay"

// What the controller (or the agent, in its absence) decided for the pair.
struct PairDecision {
  bool direct = false;
  // Direct: where this side sends first (the peer's reflexive or host endpoint); nullopt
  // when the peer initiates and WireGuard learns the endpoint from its packets.
  std::optional<net::Endpoint> send_to;
  // Direct: where to punch (from the WireGuard port) before moving a relayed pair onto the
  // direct path, so that the first direct packets find both NATs open.
  std::vector<net::Endpoint> punch;
  // Both sides send first, and this one lets the other's handshake come first: a new
  // pair's WireGuard handshakes crossing on the wire cancel each other out (each side
  // answers the other's and drops the answer to its own), costing 5 s (REKEY_TIMEOUT).
  bool yield = false;
  std::string reason;
  friend bool operator==(const PairDecision&, const PairDecision&) = default;
};

// One sample of WireGuard's view of the peer. Times are on the caller's clock (`now`).
struct PeerSample {
  uint64_t rx_bytes = 0, tx_bytes = 0;
  int64_t last_handshake_ms = 0;  // 0: none yet
  Path endpoint_path = Path::kNone;  // the class of WireGuard's current endpoint
};

struct PeerPathOptions {
  int64_t suspect_ms = 1000;        // sent, and nothing came back for this long: probe
  int64_t probe_every_ms = 250;     // while in doubt
  int64_t probe_timeout_ms = 1000;  // in doubt this long without an answer: dead
  int64_t punch_ms = 500;           // punching before the first direct packet
  int64_t yield_ms = 1000;          // a new pair's side that yields opens this much longer
  int64_t keep_open_ms = 10000;     // punching while relayed after a fall-back
  int64_t retry_first_ms = 10000;   // after a fall-back, direct is tried again; doubling...
  int64_t retry_max_ms = 300000;    // ...up to this
  int64_t stable_ms = 60000;        // direct and answering this long: the backoff starts over
  int64_t follow_ms = 3000;         // WireGuard's endpoint in the other class this long: follow it
};

class PeerPath {
 public:
  enum class State { kPending, kOpening, kDirect, kRelayed, kFallback, kUpgrading };
  static std::string_view StateName(State s);

  explicit PeerPath(PeerPathOptions o = {}) : o_(o) {}

  // The pair's decision, given again on every reconcile; only a change counts. Returns
  // where to punch at once (a new opening or move starts with a punch, not a tick later).
  std::vector<net::Endpoint> Decide(const PairDecision& d, int64_t now);
  // The local endpoint that carries the peer's packets through our relay (nullopt: none).
  void SetRelay(std::optional<net::Endpoint> proxy, int64_t now);
  void Observe(const PeerSample& s, int64_t now);
  // An authenticated probe sent while in doubt came back.
  void ProbeAnswered(int64_t now);

  struct Actions {
    bool probe = false;                // send a probe through the tunnel now
    std::vector<net::Endpoint> punch;  // punch towards these from the WireGuard port now
    bool reconfigure = false;          // path() or endpoint() changed: apply
    // Write endpoint() to WireGuard even if it did not change: it roamed away (to the
    // peer's relayed packets) while this side sends direct first.
    bool set_endpoint = false;
  };
  Actions Tick(int64_t now);

  // Where this side sends: the path, the endpoint to give WireGuard (nullopt: leave it to
  // the handshake), and why.
  Path path() const;
  std::optional<net::Endpoint> endpoint() const;
  std::string reason() const;
  State state() const { return state_; }
  bool in_doubt() const { return doubt_since_ >= 0; }
  int64_t retry_backoff_ms() const { return backoff_ms_; }

 private:
  void Enter(State s, int64_t now, std::string why);
  void FallBack(int64_t now, std::string why);

  PeerPathOptions o_;
  State state_ = State::kPending;
  std::optional<PairDecision> decision_;
  std::optional<net::Endpoint> relay_;
  std::string why_;  // why the state differs from the decision, if it does
  bool kick_ = false;  // entered kDirect from punching: one probe on the next tick
  int64_t entered_ms_ = 0;
  int64_t retry_at_ms_ = 0;
  int64_t backoff_ms_ = 0;     // the next fall-back's wait (0: retry_first_ms)
  int64_t answered_ms_ = -1;   // last evidence of a working direct path
  bool pending_change_ = false;
  // Counters: when rx last moved, and when tx first moved after that.
  bool sampled_ = false;
  uint64_t rx_ = 0, tx_ = 0;
  int64_t handshake_ms_ = 0;
  int64_t last_punch_ms_ = -1;
  int64_t rx_moved_ms_ = 0;
  int64_t unanswered_tx_ms_ = -1;  // first tx since rx last moved (-1: none)
  int64_t doubt_since_ = -1;
  int64_t last_probe_ms_ = -1;
  Path seen_ = Path::kNone;        // WireGuard's endpoint class
  int64_t seen_since_ms_ = 0;
  int reasserted_ = 0;             // endpoint written again since it roamed to the relay
};

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_PEER_PATH_H_
