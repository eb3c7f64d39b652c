// What the agent's files (agent*.cc) share and nothing else uses.
#ifndef WEFT_NODE_AGENT_AGENT_INTERNAL_H_
#define WEFT_NODE_AGENT_AGENT_INTERNAL_H_

#include <optional>
#include <string>
#include <vector>

#include "lib/net/ip_address.h"
#include "weft/v1/weft.pb.h"

namespace weft::agent {

// One line on stderr, with the wall-clock time (UTC, ms): path events on two nodes line up.
void Log(const std::string& s);

// The node's own addresses as HOST candidates, at its WireGuard port.
void AddHostCandidates(v1::NodeInfo& n, const std::vector<net::IpAddress>& hosts, uint16_t wg_port);

// A peer node's tunnel address, which path probes ping: the first address of its first
// IPv4 pod CIDR, or of its IPv6 one in an IPv6-only pod network.
std::optional<net::IpAddress> TunnelAddress(const v1::NodeInfo& n);
// IPv4's only: the path MTU search's (its probes are IPv4; an IPv6-only pod network keeps
// the tunnel MTU, at least 1280).
std::optional<net::IpAddress> TunnelAddressV4(const v1::NodeInfo& n);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_AGENT_INTERNAL_H_
