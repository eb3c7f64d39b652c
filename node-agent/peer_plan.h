// What the WireGuard device and the routing table should hold, from the controller's
// state and directives (pure). The agent applies the difference, peer by peer, so a
// peer that did not change is never touched (no handshake is lost, nothing flaps).
#ifndef WEFT_NODE_AGENT_PEER_PLAN_H_
#define WEFT_NODE_AGENT_PEER_PLAN_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/nat/peer_path.h"
#include "lib/wireguard/device.h"
#include "weft/v1/weft.pb.h"

namespace weft::agent {

struct PlannedPeer {
  std::string node;
  wireguard::PeerConfig config;  // public key, endpoint (if we should send first), allowed IPs
  std::vector<net::IpPrefix> routes;  // the peer's pod CIDRs, routed into the WireGuard device
  std::string path;                   // "direct", "relay", "none"
  std::string reason;
  int path_mtu = 0;  // found by probing (0: not known; the device's MTU applies)
  // The pair's decision (nullopt: none yet), for the peer's path state machine, which
  // has the last word on path, endpoint and reason (nat::PeerPath).
  std::optional<nat::PairDecision> decision;
  friend bool operator==(const PlannedPeer&, const PlannedPeer&) = default;
};

// Peers for every other node that has a key and pod CIDRs. Keepalive (25 s) keeps NAT
// mappings open; the endpoint is set only when this side should send first (the peer
// is public or easy, per the directive), and left for the handshake to teach otherwise.
// Without the controller's directive for a pair, the agent decides it the same way from
// its own report (`self_info`, once its NAT verdict is known) and the peer's. Without
// either, the pair is pending: a peer already in the device (`current`, a restarted
// agent) stays as it is; a new one is not added yet, since a WireGuard peer without an
// endpoint that sees traffic fails a handshake and then waits 5 s (REKEY_TIMEOUT)
// before the next, even once it has an endpoint.
// For a relayed pair, `relay_endpoint(peer)` gives the local endpoint that carries the
// peer's packets through the relay (nullopt: no relay path, the pair has none).
using RelayEndpointFn = std::function<std::optional<net::Endpoint>(const v1::NodeInfo& peer)>;
std::vector<PlannedPeer> PlanPeers(const std::string& self, const std::map<std::string, v1::NodeInfo>& nodes,
                                   const std::map<std::string, v1::PairDirective>& directives,
                                   const v1::NodeInfo* self_info = nullptr,
                                   const std::vector<PlannedPeer>& current = {},
                                   const RelayEndpointFn& relay_endpoint = nullptr);

// The class of WireGuard's endpoint for a peer: our relay proxies listen on loopback, and
// nothing else a peer could be reached on is.
nat::Path EndpointPath(const std::optional<net::Endpoint>& e);
// "direct", "relay", "relay-tcp" (our allocation is over TCP) or "none".
std::string TruePathName(nat::Path p, bool relay_tcp);

// The changes that turn `current` into `desired`: changed or new peers in full, vanished
// ones removed; an unchanged peer does not appear.
wireguard::DeviceConfig DiffPeers(const std::vector<PlannedPeer>& current, const std::vector<PlannedPeer>& desired);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_PEER_PLAN_H_
