// Fresh flows for the NAT monitor: a NAT that starts mapping per destination (a rule
// swapped, `--random-fully` added) keeps the flows it already has, and the monitor's own
// probes to the same STUN targets every round keep theirs alive for ever. Only a packet
// from the port to a destination the NAT has no entry for shows how it maps *new* flows.
//
// When a peer sees the node at another port than STUN did (the controller's Reprobe),
// the monitor's next round also probes one "fresh" destination: a STUN server the port
// has not exchanged packets with for `fresh_after` (longer than the NAT keeps a short
// exchange: 30 s in Linux conntrack). Candidates are the relays (TURN servers answer
// Binding requests, and the port never talks to them otherwise), preferred, and the other
// addresses and ports of RFC 5780 servers (OTHER-ADDRESS). The configured targets are
// used every round and so are never fresh. A destination that sent to the port (the
// filtering tests ask a server to answer from its other address and port) counts as
// used too: on a NAT that does not drop unsolicited input, that packet left a conntrack
// entry which would take the port. And a fresh probe to an RFC 5780 server's other
// address would let its answers through an address-filtering NAT, so the filtering tests
// wait until that is forgotten (QuietForFilteringTests).
//
// The verdict a round gives is settled here: new flows mapped to another port than the
// old ones is "hard" (the NAT changed), and stays hard in rounds without a fresh flow,
// until a fresh flow maps like the old ones again. Pure: no socket, no clock.
#ifndef WEFT_LIB_NAT_FRESH_FLOWS_H_
#define WEFT_LIB_NAT_FRESH_FLOWS_H_

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/nat/nat_classifier.h"
#include "lib/net/endpoint.h"

namespace weft::nat {

class FreshFlows {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit FreshFlows(std::chrono::milliseconds fresh_after = std::chrono::seconds(35)) : fresh_after_(fresh_after) {}

  // The configured targets: probed every round, never offered as fresh.
  void SetTargets(const std::vector<net::Endpoint>& targets);
  // Learns the extra destinations of RFC 5780 servers from a round's answers.
  void Learn(const Observations& obs);
  // Other STUN servers the port does not otherwise talk to (the relays).
  void Offer(const std::vector<net::Endpoint>& destinations);
  // The port sent a fresh probe to `to` at `now`.
  void Probed(const net::Endpoint& to, TimePoint now);
  // A filtering test had `from` send to the port at `now`.
  void Solicited(const net::Endpoint& from, TimePoint now);
  // The destination to probe as a fresh flow now: an offered one before a learned one,
  // never used before used longest ago, provided that is at least `fresh_after` ago.
  // nullopt: none is fresh.
  std::optional<net::Endpoint> Pick(TimePoint now) const;
  // No fresh probe went to an RFC 5780 server's other address or port within
  // `fresh_after`: the filtering tests can trust what comes through.
  bool QuietForFilteringTests(TimePoint now) const;

  // A peer saw the port's traffic come from `seen` (the controller's Reprobe).
  void Sighted(const net::Endpoint& seen);
  // The round's verdict, settled against what fresh flows showed (see above). `obs` is
  // the round's observations, whose fresh probe (if any) is marked. A fresh flow mapped
  // to exactly where a peer saw the port is no randomization: a NAT that bound the port
  // to a peer's early packet (seeds/004) maps the port's new flows like the last one it
  // made (Linux's masquerade reuses an existing mapping of the source), the collided one;
  // a randomizing NAT would hit that port by chance once in tens of thousands.
  Verdict Settle(Verdict round, const Observations& obs);

  size_t known() const { return candidates_.size(); }

 private:
  struct Candidate {
    std::optional<TimePoint> used;  // unset: never
    bool learned = false;           // an RFC 5780 server's other address or port
  };
  bool IsTarget(const net::Endpoint& e) const;
  void Add(const net::Endpoint& e, bool learned);
  void Use(const net::Endpoint& e, TimePoint now);

  std::chrono::milliseconds fresh_after_;
  std::vector<net::Endpoint> targets_;
  std::map<net::Endpoint, Candidate> candidates_;  // at most kMaxKnown
  static constexpr size_t kMaxKnown = 64;
  // Destinations whose answer came from another public address than the targets' (reached
  // by another way out, not through this NAT): never offered again.
  std::set<net::Endpoint> elsewhere_;
  std::optional<TimePoint> learned_probed_;  // the last fresh probe to a learned one
  std::vector<net::Endpoint> sighted_;       // the last few, newest last
  // The last fresh flow mapped to another endpoint than the old ones: the reason it gave.
  std::optional<std::string> hard_on_new_flows_;
};

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_FRESH_FLOWS_H_
