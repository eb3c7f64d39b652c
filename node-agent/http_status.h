// weft-agent's HTTP endpoints: /healthz, /readyz and Prometheus /metrics.
#ifndef WEFT_NODE_AGENT_HTTP_STATUS_H_
#define WEFT_NODE_AGENT_HTTP_STATUS_H_

#include <string>

#include "node-agent/agent.h"

namespace weft::agent {

// The Prometheus text exposition of `st` and the device's per-peer counters (pure).
std::string RenderMetrics(const Agent::Status& st, const wireguard::DeviceStatus* device);
// Ready: the node is configured (pod CIDRs, conflist) and has a NAT verdict. The
// controller being away does not make a node unready: its data plane keeps working.
bool Ready(const Agent::Status& st, std::string* why);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_HTTP_STATUS_H_
