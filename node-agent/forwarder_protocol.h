// The agent <-> relay forwarder messages (weft.v1.ForwarderRequest/Reply), checked both
// ways: what a forwarder is asked to do, and what an agent believes of a forwarder's
// reply, are validated here (pure; fuzzed) before they reach a socket or a route.
#ifndef WEFT_NODE_AGENT_FORWARDER_PROTOCOL_H_
#define WEFT_NODE_AGENT_FORWARDER_PROTOCOL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "node-agent/relay_client.h"
#include "weft/v1/weft.pb.h"

namespace weft::agent {

// What a forwarder says of its allocation.
struct ForwarderState {
  bool allocated = false;
  net::Endpoint relayed, server;  // set when allocated
  bool tcp = false;
  bool alive = false;
  bool persistent = false;  // serves on after a stop (the chart's sidecar)
  RelayClient::Stats stats;
};

// A Start request as relay client options: the server a unicast IPv4 endpoint, the
// credentials at most 512 bytes (a STUN USERNAME's limit) without NUL, the WireGuard
// port non-zero, the lifetime at most an hour (0: 600 s).
absl::StatusOr<RelayClient::Options> StartOptionsOf(const v1::ForwarderStart& s);
v1::ForwarderStart StartOf(const RelayClient::Options& o);

// A peer's relayed address in a proxy_for request (a unicast endpoint).
absl::StatusOr<net::Endpoint> PeerOf(const std::string& text);

// A reply: its error as a status, else the state it tells. An allocated state needs
// parseable relayed and server endpoints.
absl::StatusOr<ForwarderState> StateOf(const v1::ForwarderReply& r);
// A proxy_for reply: the proxy, which must be 127.0.0.1 with a non-zero port (WireGuard
// is pointed at it: anything else would send a peer's packets elsewhere).
absl::StatusOr<net::Endpoint> ProxyOf(const v1::ForwarderReply& r);

v1::ForwarderReply ErrorReply(const absl::Status& s);
v1::ForwarderReply ReplyOf(const ForwarderState& s);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_FORWARDER_PROTOCOL_H_
