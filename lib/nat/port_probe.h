// Runs one NatProber round over a SharedPortStun: the socket-owning adapter (the agent
// calls it from its own thread; weftctl netcheck and the lab tests call it directly).
#ifndef WEFT_LIB_NAT_PORT_PROBE_H_
#define WEFT_LIB_NAT_PORT_PROBE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "lib/nat/nat_prober.h"

namespace weft::nat {

struct PortProbeReport {
  Verdict verdict;
  Observations observations;
  NatProber::Counters counters;
  std::chrono::milliseconds took{0};
  // Endpoints the filtering tests asked to send to the port (RFC 5780 CHANGE-REQUEST).
  std::vector<net::Endpoint> solicited_from;
  // IPv6's verdict, from the IPv6 targets (RunNatMonitor's `targets6`), when there are any:
  // the node's own global address (no NAT) or what NPTv6 / NAT66 made of it.
  std::optional<Verdict> verdict6;
};

// Probes the NAT mapping of local UDP `port` (owned by another socket, e.g. WireGuard)
// against `targets`, in the calling thread's netns. `local_ips` are the node's own
// addresses (to recognize "no NAT"). Blocks for at most the prober's deadline, plus
// `hairpin_wait` when there is a reflexive endpoint behind a NAT to test hairpinning on:
// a Binding request to it either comes back to the port (the NAT hairpins) or not; and
// twice that when a target supports RFC 5780 (OTHER-ADDRESS), for the filtering tests.
absl::StatusOr<PortProbeReport> ProbePort(uint16_t port, const std::vector<net::Endpoint>& targets,
                                          const std::vector<net::IpAddress>& local_ips,
                                          const NatProber::Options& base = {},
                                          std::chrono::milliseconds hairpin_wait = std::chrono::milliseconds(300));

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_PORT_PROBE_H_
