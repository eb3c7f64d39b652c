// Conversions between the wire types (weft.v1) and lib/nat's types, for the controller and the agent.
#ifndef WEFT_LIB_API_NODE_NAT_H_
#define WEFT_LIB_API_NODE_NAT_H_

#include <optional>
#include <string>

#include "lib/nat/path_strategy.h"
#include "weft/v1/weft.pb.h"

namespace weft::api {

nat::NodeNat NodeNatOf(const v1::NodeInfo& node);
v1::PairDirective DirectiveOf(const nat::PathDecision& d, const std::string& peer, bool initiate);
v1::NatReport NatReportOf(const nat::Verdict& v);
// A wire endpoint, typed: an address that parses and a port 1..65535; else nullopt.
std::optional<net::Endpoint> EndpointOf(const v1::Endpoint& e);
// The node's first host candidate with a global IPv6 address (its WireGuard port there).
std::optional<net::Endpoint> GlobalIpv6Of(const v1::NodeInfo& node);
// The directive `self` gets for its pair with `peer` (the controller sends the same one;
// an agent computes it itself while the controller's is on its way).
v1::PairDirective DecideFor(const v1::NodeInfo& self, const v1::NodeInfo& peer);
// "kernel", "userspace", or "unknown" (an older agent, or a value this build does not know).
std::string WireGuardBackendName(v1::WireGuardBackend b);

}  // namespace weft::api

#endif  // WEFT_LIB_API_NODE_NAT_H_
