// Keeps a port's NAT verdict current: re-probes on a timer and at once when the node's
// addresses, routes or links change, and says when the answer changed. A round asked
// for (probe_now) also tries one fresh flow (fresh_flows.h), so a NAT that starts mapping
// new flows per destination is seen although it keeps the old flows (the monitor's own
// among them).
#ifndef WEFT_LIB_NAT_NAT_MONITOR_H_
#define WEFT_LIB_NAT_NAT_MONITOR_H_

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <vector>

#include "absl/status/status.h"
#include "lib/nat/port_probe.h"

namespace weft::nat {

// Whether two verdicts differ in what matters to peers: mapping, filtering, blocking,
// hairpin, the public endpoint and port preservation (not counts, timings or wording).
bool SameVerdict(const Verdict& a, const Verdict& b);

struct MonitorOptions {
  uint16_t port = 51820;
  std::vector<net::Endpoint> targets;
  // IPv6 STUN servers: probed from the same port every round, for a verdict of their own
  // (never mixed into IPv4's: an IPv6 answer would make any IPv4 NAT look hard).
  std::vector<net::Endpoint> targets6;
  std::chrono::milliseconds interval{15000};  // between rounds when nothing changes
  std::chrono::milliseconds settle{100};      // after a netlink change, before probing
  std::chrono::milliseconds extras_wait{300}; // hairpin and filtering answers (0: skip)
  // The hairpin and filtering tests run in the second round, every `extras_every` rounds
  // after, and after a round whose mapping changed; other rounds keep their answers. (They
  // ask a server to send from its other address and port: those are then not fresh; and
  // they wait while a fresh probe to those is remembered by the NAT.)
  int extras_every = 8;
  // A destination unused this long is probed as a fresh flow (fresh_flows.h).
  std::chrono::milliseconds fresh_after{35000};
  // If set, asked before every round for more STUN servers to probe fresh flows with
  // (besides RFC 5780 servers' other addresses): the agent gives its relays.
  std::function<std::vector<net::Endpoint>()> fresh_destinations;
  // Polled between rounds (every 100 ms): true starts a round at once, with a fresh flow
  // (for example when a peer sees the port at another port than STUN did, or after the
  // node's NAT rules changed, which netlink does not announce).
  std::function<bool()> probe_now;
  // If set, asked before every round: where peers saw the port since the last call (what
  // made them ask for the round), for FreshFlows::Sighted.
  std::function<std::vector<net::Endpoint>()> sightings;
  // If set, asked for the targets before every round (names resolved again, so a node
  // whose DNS is not up yet, as on a fresh cluster, starts probing once it is); an error
  // skips the round and retries after `retry`.
  std::function<absl::StatusOr<std::vector<net::Endpoint>>()> resolve_targets;
  std::chrono::milliseconds retry{2000};
};

// Called after every round: the new report, and the previous verdict (unset on the
// first round). `changed` says whether the verdict (or IPv6's) differs from the previous one.
using MonitorCallback = std::function<void(const PortProbeReport& report, const std::optional<Verdict>& before, bool changed)>;

// Runs rounds until `stop` is requested, on the calling thread and in its netns (which
// must be the node's). Returns an error only if it cannot watch or probe at all.
absl::Status RunNatMonitor(const MonitorOptions& opts, const MonitorCallback& on_round, std::stop_token stop);

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_NAT_MONITOR_H_
