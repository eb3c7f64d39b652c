// Which path two nodes should use, from what their NATs are (DESIGN.md's strategy
// table): pure, so the controller can decide and both agents (and weftctl) can explain.
#ifndef WEFT_LIB_NAT_PATH_STRATEGY_H_
#define WEFT_LIB_NAT_PATH_STRATEGY_H_

#include <optional>
#include <string>

#include "lib/nat/nat_classifier.h"

namespace weft::nat {

enum class PathKind {
  kDirect,    // WireGuard straight between the nodes
  kRelayUdp,  // through a relay pod over UDP (TURN)
  kRelayTcp,  // through a relay pod over TCP (UDP does not get out)
};

enum class Initiator {
  kEither,  // no NAT in the way: whoever has traffic first
  kBoth,    // simultaneous punch: both send at the controller's signal
  kA,       // A sends first: its NAT maps per destination, so B cannot know where to send
  kB,       // the same, the other way round
  kNone,    // relayed
};

struct PathDecision {
  PathKind path = PathKind::kRelayUdp;
  Initiator initiator = Initiator::kNone;
  bool use_host_candidates = false;  // same NAT: talk over the site's own addresses
  std::string reason;                // "relayed: both nodes behind endpoint-dependent NAT"
  bool ipv6 = false;                 // direct over the nodes' global IPv6 addresses
  friend bool operator==(const PathDecision&, const PathDecision&) = default;
};

absl::string_view PathKindName(PathKind k);
absl::string_view InitiatorName(Initiator i);

// What the decision needs to know of one node.
struct NodeNat {
  std::string name;
  Verdict nat;
  // The node's public address as STUN saw it (for hard NATs: the IP, whose port varies).
  std::optional<net::IpAddress> public_ip;
  // A global IPv6 address of the node's (no NAT for IPv6; at most a stateful firewall).
  std::optional<net::IpAddress> global_ipv6;
};

// The table, for IPv4; where it says relay and both nodes have global IPv6, direct over
// IPv6 instead, both sending first: a stateful firewall lets in the answers to what its
// side sent, so each side's first packets open its own (a simultaneous open).
PathDecision DecidePath(const NodeNat& a, const NodeNat& b);

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_PATH_STRATEGY_H_
