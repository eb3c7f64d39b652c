// The agent's side of its relay forwarder (relay_forwarder.h): launches one, or adopts
// the one a previous agent left running, and asks it for the allocation's state and for
// the local proxy of each relayed peer. Every reply is validated (forwarder_protocol.h).
// Thread-safe: one request at a time on the connection.
#ifndef WEFT_NODE_AGENT_FORWARDER_CLIENT_H_
#define WEFT_NODE_AGENT_FORWARDER_CLIENT_H_

#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "node-agent/forwarder_protocol.h"
#include "node-agent/relay_client.h"

namespace weft::agent {

// Where the agent's relay forwarder listens: in the agent's state directory.
inline std::string RelayForwarderSocket(const std::string& state_dir) { return state_dir + "/relay-forwarder.sock"; }

// The unix socket address of `path` (InvalidArgument when empty or too long).
absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path);

class ForwarderClient {
 public:
  // The forwarder listening at `socket_path`, and what it holds (NotFound when none does).
  static absl::StatusOr<std::unique_ptr<ForwarderClient>> Connect(const std::string& socket_path);
  struct LaunchOptions {
    std::string binary = "/proc/self/exe";  // weft-agent (normally this one)
    int idle_exit_s = 60;                   // a launched forwarder exits this long after its agent
    bool launch = true;                     // false: only ever the one listening (the chart's sidecar)
  };
  // Allocates on the relay `opts` names through a forwarder: the one listening at
  // `socket_path` when it holds nothing (a sidecar; one that holds an allocation is
  // stopped first: the caller holds none), else a new `binary relay-forwarder` in a session
  // of its own (it outlives this process). On failure a launched forwarder is stopped.
  static absl::StatusOr<std::unique_ptr<ForwarderClient>> Allocate(const std::string& socket_path,
                                                                   const RelayClient::Options& opts,
                                                                   const LaunchOptions& launch);
  static absl::StatusOr<std::unique_ptr<ForwarderClient>> Allocate(const std::string& socket_path,
                                                                   const RelayClient::Options& opts) {
    return Allocate(socket_path, opts, LaunchOptions());
  }
  ~ForwarderClient();  // closes the connection; the forwarder keeps relaying

  // As of the last reply.
  const ForwarderState& state() const { return state_; }
  const net::Endpoint& relayed() const { return state_.relayed; }
  const net::Endpoint& server() const { return state_.server; }
  bool tcp() const { return state_.tcp; }

  // The local endpoint WireGuard should send to for the peer whose relayed address is
  // `peer_relayed` (the same one for the forwarder's life).
  absl::StatusOr<net::Endpoint> ProxyFor(const net::Endpoint& peer_relayed);
  // Asks: false once the relay stopped answering, or the forwarder is gone.
  bool alive();
  // Releases the allocation; the forwarder exits.
  absl::Status Stop();

 private:
  ForwarderClient(int fd, ForwarderState s) : fd_(fd), state_(s) {}
  absl::StatusOr<v1::ForwarderReply> Call(const v1::ForwarderRequest& q, std::chrono::milliseconds timeout);

  std::mutex mu_;  // one request at a time
  int fd_ = -1;
  pid_t pid_ = -1;  // when we launched it: to reap it once stopped
  ForwarderState state_;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_FORWARDER_CLIENT_H_
