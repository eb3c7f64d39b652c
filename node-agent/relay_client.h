// The agent's relay path: a TURN client (RFC 8656, UDP) that carries WireGuard packets
// for peers with no direct path. It allocates on the relay, publishes the relayed
// address as the node's RELAYED candidate, and for each relayed peer binds a channel to
// the peer's relayed address and opens a local proxy socket (127.0.0.1) that WireGuard
// uses as that peer's endpoint: WireGuard -> proxy -> ChannelData -> relay -> the peer's
// allocation -> the peer's agent -> its WireGuard, and back. Works with any standard TURN
// server (weft-relay, coturn) with TURN REST credentials. The relay sees ciphertext only.
#ifndef WEFT_NODE_AGENT_RELAY_CLIENT_H_
#define WEFT_NODE_AGENT_RELAY_CLIENT_H_

#include <netinet/in.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "lib/stun/stun_message.h"
#include "lib/turn/channel_data.h"
#include "lib/turn/stream_framer.h"
#include "lib/turn/turn_client.h"

namespace weft::agent {

class RelayClient {
 public:
  struct Options {
    net::Endpoint server;
    std::string username, password, realm_hint;
    uint16_t wg_port = 51820;  // WireGuard on 127.0.0.1 receives what the relay brings
    bool tcp = false;          // TURN over TCP to the relay, for nodes whose UDP is blocked
    uint32_t lifetime_s = 600; // the allocation's lifetime asked for (refreshed at half)
  };
  // Allocates (bounded: about 3 s) and starts relaying.
  static absl::StatusOr<std::unique_ptr<RelayClient>> Start(Options opts);
  ~RelayClient();  // releases the allocation (best effort)

  const net::Endpoint& relayed() const { return relayed_; }
  const net::Endpoint& server() const { return opts_.server; }
  bool tcp() const { return opts_.tcp; }
  // The local endpoint WireGuard should send to for the peer whose relayed address is
  // `peer_relayed`; the channel to it is bound in the background (and kept bound).
  absl::StatusOr<net::Endpoint> ProxyFor(const net::Endpoint& peer_relayed);

  // False once the relay stopped answering (3 s without a packet while we ask every
  // second), or refused us: time to move to another relay.
  bool alive() const;

  struct Stats {
    uint64_t to_relay = 0, from_relay = 0, dropped = 0;
  };
  Stats stats() const;

 private:
  struct Peer {
    net::Endpoint relayed;
    uint16_t channel = 0;
    int proxy_fd = -1;
    uint16_t proxy_port = 0;
  };
  explicit RelayClient(Options opts)
      : opts_(std::move(opts)),
        turn_({.username = opts_.username, .password = opts_.password, .lifetime_s = opts_.lifetime_s,
               .tx_seed = RandomSeed()}) {}
  static uint64_t RandomSeed();
  absl::Status Allocate();
  // One STUN message or ChannelData frame to the relay (padded on TCP; queued when the
  // stream is full, dropped beyond 4 MiB).
  void SendFrame(absl::Span<const uint8_t> frame);
  void FlushTcp();
  // Reads what is there and calls `on_frame` per whole frame; false when the relay hung up.
  bool ReadFrames(const std::function<void(absl::Span<const uint8_t>)>& on_frame);
  // UDP: batches of datagrams (recvmmsg); ChannelData straight to WireGuard (sendmmsg),
  // the rest to `on_frame`.
  bool ReadDatagrams(const std::function<void(absl::Span<const uint8_t>)>& on_frame);
  // A STUN message from the relay: to the protocol (TurnClient).
  void OnStun(absl::Span<const uint8_t> frame);
  void Loop(std::stop_token stop);
  // From WireGuard: a batch of datagrams in, as ChannelData on `channel` out.
  void ForwardFromWireGuard(uint16_t channel, int proxy_fd);
  void Maintain(int64_t now_ms);
  void OnRelayPacket(absl::Span<const uint8_t> pkt);

  Options opts_;
  int fd_ = -1;  // connected to the relay
  int ep_ = -1;  // epoll: fd_ (kRelayKey) and the proxy sockets (channel << 32 | fd)
  static constexpr uint64_t kRelayKey = ~uint64_t{0};
  sockaddr_in wg_addr_{};  // WireGuard's port on 127.0.0.1, where relayed packets go
  turn::StreamFramer tcp_in_;      // TCP: frames out of the stream
  std::vector<uint8_t> tcp_out_;   // TCP: unsent bytes
  net::Endpoint relayed_;
  std::atomic<int64_t> last_rx_ms_{0};
  std::atomic<bool> refused_{false};
  int64_t last_maintain_ms_ = 0;
  // recvmmsg batches, both directions: kBatch datagrams of at most kSlot bytes.
  static constexpr int kBatch = 32;
  static constexpr size_t kSlot = 2048;
  std::vector<uint8_t> batch_ = std::vector<uint8_t>(kBatch * kSlot);     // from WireGuard
  std::vector<uint8_t> rx_batch_ = std::vector<uint8_t>(kBatch * kSlot);  // from the relay
  mutable std::mutex mu_;
  std::map<uint16_t, Peer> peers_;              // channel → peer; guarded by mu_
  turn::TurnClient turn_;                       // the protocol; guarded by mu_
  std::atomic<uint64_t> to_relay_{0}, from_relay_{0}, dropped_{0};
  std::jthread thread_;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_RELAY_CLIENT_H_
