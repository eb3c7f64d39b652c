// Which peers a TURN client may reach through weft-relay. A relay is on the internet
// with hostNetwork: left open, any node's credentials reach the node's loopback, its
// own services, the networks behind it and multicast. Weft's relayed peers are always
// other allocations' relayed addresses (on this relay or another), so that is all the
// default allows; admins can add ranges (`allowed`) and refuse ranges (`denied`, like
// coturn's denied-peer-ip). Never, whatever the lists say: unspecified, loopback,
// link-local, multicast, broadcast, 0/8, 240/4, and this relay's own service ports.
// Pure; the caller (TurnServer) answers 403 and counts.
#ifndef WEFT_LIB_TURN_PEER_POLICY_H_
#define WEFT_LIB_TURN_PEER_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/net/endpoint.h"
#include "lib/net/ip_address.h"

namespace weft::turn {

struct PeerPolicyOptions {
  // The relays' relayed IPs: this relay's own and the other relays' (Weft's peers).
  std::vector<net::IpAddress> relay_ips;
  // Relayed ports on those IPs; any other port there is refused.
  uint16_t relay_port_min = 49152, relay_port_max = 65535;
  std::vector<net::IpPrefix> allowed;  // admin: more peers (any port)
  std::vector<net::IpPrefix> denied;   // admin: refused, before `allowed` and the relays
  // This relay's own service endpoints (STUN/TURN, HTTP); an unspecified IP stands for
  // every IP of the relay's.
  std::vector<net::Endpoint> own;
  // Tests and benchmarks on one host only (coturn's --allow-loopback-peers).
  bool allow_loopback = false;
};

class PeerPolicy {
 public:
  PeerPolicy() = default;
  explicit PeerPolicy(PeerPolicyOptions opts) : opts_(std::move(opts)) {}

  // OK, or PermissionDenied saying why. `port` 0 checks the IP only (a permission is
  // per IP; CreatePermission's port carries no meaning).
  absl::Status Check(const net::Endpoint& peer) const;
  void set_relay_ips(std::vector<net::IpAddress> ips) { opts_.relay_ips = std::move(ips); }
  const PeerPolicyOptions& options() const { return opts_; }

 private:
  PeerPolicyOptions opts_;
};

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_PEER_POLICY_H_
