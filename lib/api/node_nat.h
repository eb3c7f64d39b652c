// Conversions between the wire types (weft.v1) and lib/nat's types, for the controller and the agent.
#ifndef WEFT_LIB_API_NODE_NAT_H_
#define WEFT_LIB_API_NODE_NAT_H_

#include <optional>
#include <string>
#include <vector>

#include "lib/nat/path_strategy.h"
#include "weft/v1/weft.pb.h"

namespace weft::api {

nat::NodeNat NodeNatOf(const v1::NodeInfo& node);
v1::PairDirective DirectiveOf(const nat::PathDecision& d, const std::string& peer, bool initiate);
v1::NatReport NatReportOf(const nat::Verdict& v);
// A wire endpoint, typed: an address that parses and a port 1..65535; else nullopt.
std::optional<net::Endpoint> EndpointOf(const v1::Endpoint& e);
// The node's first host candidate with a global IPv6 address (its WireGuard port there);
// without one, its first server-reflexive one (NPTv6's translation of a ULA).
std::optional<net::Endpoint> GlobalIpv6Of(const v1::NodeInfo& node);
// A server-reflexive candidate for IPv6's verdict, when STUN saw the port at a global
// address that is not one of the node's own (`hosts`): NPTv6 or NAT66 in the way.
void AddReflexive6(v1::NodeInfo& n, const std::optional<nat::Verdict>& v6, const std::vector<net::IpAddress>& hosts);
// The directive `self` gets for its pair with `peer` (the controller sends the same one;
// an agent computes it itself while the controller's is on its way).
v1::PairDirective DecideFor(const v1::NodeInfo& self, const v1::NodeInfo& peer);
// "kernel", "userspace", or "unknown" (an older agent, or a value this build does not know).
std::string WireGuardBackendName(v1::WireGuardBackend b);

}  // namespace weft::api

#endif  // WEFT_LIB_API_NODE_NAT_H_
