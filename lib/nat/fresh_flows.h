// Fresh flows for the NAT monitor: a NAT that starts mapping per destination (a rule
// swapped, `--random-fully` added) keeps the flows it already has, and the monitor's own
// probes to the same STUN targets every round keep theirs alive for ever. Only a packet
// from the port to a destination the NAT has no entry for shows how it maps *new* flows.
//
// So every round also probes one "fresh" destination: an address and port of a STUN
// server that the port has not exchanged packets with for `fresh_after` (longer than the
// NAT's UDP timeout for a short exchange: 30 s in Linux conntrack). The destinations come
// from RFC 5780 servers' OTHER-ADDRESS (each such server answers on four address:port
// pairs), besides the configured targets, which are used every round and so never fresh.
// A destination that sent to the port (the filtering tests ask a server to answer from
// its other address and port) counts as used too: on a NAT that does not drop
// unsolicited input, that packet left a conntrack entry which would take the port.
//
// The verdict a round gives is settled here: new flows mapped to another port than the
// old ones is "hard" (the NAT changed), and stays hard in rounds that had no fresh
// destination to try, until a fresh flow maps like the old ones again. Pure: no socket,
// no clock.
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
  // Other STUN servers the port does not otherwise talk to (the relays: TURN servers
  // answer Binding requests, and the agent reaches them from another socket).
  void Offer(const std::vector<net::Endpoint>& destinations);
  // The port exchanged packets with `peer` (sent to it, or it sent to the port) at `now`.
  void Used(const net::Endpoint& peer, TimePoint now);
  // The destination to probe as a fresh flow now: never used, else the longest unused
  // one, provided that is at least `fresh_after` ago. nullopt: none is fresh. A routine
  // round (not `urgent`) leaves the last fresh one for an urgent round (a peer saw us at
  // another port), unless only one destination is known at all.
  std::optional<net::Endpoint> Pick(TimePoint now, bool urgent = true) const;

  // The round's verdict, settled against what fresh flows showed (see above). `obs` is
  // the round's observations, whose fresh probe (if any) is marked.
  Verdict Settle(Verdict round, const Observations& obs);

  size_t known() const { return last_used_.size(); }

 private:
  std::chrono::milliseconds fresh_after_;
  std::vector<net::Endpoint> targets_;
  std::map<net::Endpoint, std::optional<TimePoint>> last_used_;  // candidates only, at most kMaxKnown
  static constexpr size_t kMaxKnown = 64;
  // Destinations whose answer came from another public address than the targets' (reached
  // by another way out, not through this NAT): never offered again.
  std::set<net::Endpoint> elsewhere_;
  // The last fresh flow mapped to another endpoint than the old ones: what it showed.
  std::optional<std::string> hard_on_new_flows_;
};

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_FRESH_FLOWS_H_
