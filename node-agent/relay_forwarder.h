// The relay forwarder: `weft-agent relay-forwarder --socket PATH`, a process of its own
// that holds the node's TURN allocation (a RelayClient) and the local proxy sockets
// WireGuard sends relayed peers' packets to. The agent starts it, talks to it over a
// unix socket (forwarder_protocol.h) and leaves it running when it stops; the next agent
// adopts it, as it adopts the WireGuard device. So relayed pairs keep talking while the
// agent restarts. It exits when told to stop (releasing the allocation), or when no agent
// has been connected for `idle_exit` (the agent is gone for good).
#ifndef WEFT_NODE_AGENT_RELAY_FORWARDER_H_
#define WEFT_NODE_AGENT_RELAY_FORWARDER_H_

#include <chrono>
#include <stop_token>
#include <string>

#include "absl/status/status.h"

namespace weft::agent {

struct ForwarderOptions {
  std::string socket_path;
  std::chrono::milliseconds idle_exit{60000};
  // A sidecar's (the chart runs one beside the agent's container, so that it outlives
  // the container's restarts): a stop releases the allocation and the forwarder waits for
  // the next; no idle exit.
  bool persistent = false;
};

// Serves until a stop request, `idle_exit` without an agent (neither when persistent),
// or `stop`. OK then; an
// error when the socket cannot be made.
absl::Status RunRelayForwarder(const ForwarderOptions& opts, std::stop_token stop = {});

// main() of `weft-agent relay-forwarder [flags]` (argv[0] is "relay-forwarder").
int RelayForwarderMain(int argc, char** argv);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_RELAY_FORWARDER_H_
