// NAT classification of one UDP port (the WireGuard port) from STUN observations: pure.
#ifndef WEFT_LIB_NAT_NAT_CLASSIFIER_H_
#define WEFT_LIB_NAT_NAT_CLASSIFIER_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "lib/net/endpoint.h"

namespace weft::nat {

// How the NAT maps the port (RFC 4787 section 4.1).
enum class Mapping {
  kUnknown,              // too few answers to tell
  kNone,                 // no NAT: the mapped endpoint is our own address and port
  kEndpointIndependent,  // "easy": one public ip:port whatever the destination
  kEndpointDependent,    // "hard": a new public port (or address) per destination
};

// How the NAT filters unsolicited inbound packets (RFC 4787 section 5), when a probe
// could tell (RFC 5780 CHANGE-REQUEST answered or not).
enum class Filtering { kUnknown, kEndpointIndependent, kAddressDependent, kAddressAndPortDependent };

absl::string_view MappingName(Mapping m);
absl::string_view FilteringName(Filtering f);

// One STUN target's answer to a Binding request sent from the port.
struct Probe {
  net::Endpoint server;
  std::optional<net::Endpoint> mapped;  // unset: no answer within the deadline
  std::optional<std::chrono::microseconds> rtt;
  std::optional<net::Endpoint> other_address;  // RFC 5780 OTHER-ADDRESS, if it sent one
  // A destination the port had not sent to for longer than the NAT keeps a flow (see
  // fresh_flows.h): its mapping is how the NAT maps new flows now.
  bool fresh = false;
};

struct Observations {
  uint16_t local_port = 0;                // the port probed
  std::vector<net::IpAddress> local_ips;  // the node's own addresses
  std::vector<Probe> probes;
  // RFC 5780 filtering tests, when run: did an answer sent from another address (and
  // port), or from another port only, come through?
  std::optional<bool> answered_from_other_address;
  std::optional<bool> answered_from_other_port;
  // Did a request sent to our own reflexive endpoint come back to the port (the NAT
  // hairpins, so two nodes behind it can reach each other at their public endpoints)?
  std::optional<bool> hairpin;
  // Targets a request could not even be sent to (no route: an IPv6-only node's IPv4).
  int unroutable = 0;
};

struct Verdict {
  Mapping mapping = Mapping::kUnknown;
  Filtering filtering = Filtering::kUnknown;
  bool udp_blocked = false;    // no target answered at all
  bool no_route = false;       // none could even be sent to: the node lacks the family
  bool port_preserved = false; // every mapping kept the local port
  std::optional<net::Endpoint> reflexive;  // the public endpoint, when independent of the peer
  // The public address when every answer saw the same one, also behind a NAT that maps
  // each destination to a new port (it tells "behind the same NAT" apart).
  std::optional<net::IpAddress> public_ip;
  std::optional<bool> hairpin;
  int answered = 0;
  int probed = 0;
  std::string reason;  // one sentence an admin can read

  bool hard() const { return mapping == Mapping::kEndpointDependent; }
  friend bool operator==(const Verdict&, const Verdict&) = default;
};

// The reason of a NAT whose new flows map elsewhere than its older ones: a fresh flow to
// `server` mapped to `mapped`, the older flows all to `old` (fresh_flows.h).
std::string NewFlowsHardReason(const net::Endpoint& server, const net::Endpoint& mapped, const net::Endpoint& old);

// Needs answers from two targets with distinct addresses to say anything about the
// mapping; three or more make "independent" trustworthy (a NAT that randomizes only
// some destinations can look independent to two).
Verdict Classify(const Observations& obs);

// The minimum number of answering targets for a definite "independent" verdict.
inline constexpr int kMinTargetsForIndependent = 3;

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_NAT_CLASSIFIER_H_
