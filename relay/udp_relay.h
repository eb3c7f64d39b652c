// weft-relay's event loop: one UDP socket and one TCP listener for clients (STUN Binding
// and TURN; TCP for networks that block UDP, RFC 8656 section 3.1 framing), one UDP
// socket per allocation for its peers, epoll, and batched I/O (recvmmsg/sendmmsg). The
// protocol is lib/turn's TurnServer; this file only moves datagrams. TCP is bounded the
// way an internet-facing server must be: connections in total and per source address,
// memory per connection (a client that does not read its answers is not read either;
// relayed data it cannot take is dropped, not the connection), a deadline to allocate,
// a deadline for a frame begun, TCP_NODELAY; a TCP allocation ends with its connection.
#ifndef WEFT_RELAY_UDP_RELAY_H_
#define WEFT_RELAY_UDP_RELAY_H_

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "lib/turn/stream_framer.h"
#include "lib/turn/turn_server.h"

namespace weft::relay {

struct RelayOptions {
  net::Endpoint listen;           // where clients reach the server
  net::IpAddress relay_ip;        // the relayed addresses' IP (as peers reach it)
  uint16_t port_min = 49152, port_max = 65535;
  turn::ServerOptions turn;
  size_t max_tcp_connections = 1024;
  size_t max_tcp_per_address = 64;        // connections from one source IP
  int64_t tcp_allocate_timeout_ms = 10000;  // a connection without an allocation is closed after this
  int64_t tcp_frame_timeout_ms = 5000;      // a frame begun must be whole within this
  size_t tcp_stop_reading_bytes = 64 << 10;  // answers not read: stop reading the client
  size_t tcp_max_queued_bytes = 256 << 10;   // relayed data beyond this is dropped (counted)
};

// What the TCP side refused or cut, for /metrics.
struct TcpCounters {
  uint64_t connections = 0;       // open now
  uint64_t refused = 0;           // over the total or per-address cap, or out of descriptors
  uint64_t allocate_timeouts = 0;  // closed: no allocation in time
  uint64_t frame_timeouts = 0;     // closed: a frame begun and not finished in time
  uint64_t bad_streams = 0;        // closed: neither STUN nor ChannelData
  uint64_t dropped = 0;            // datagrams for a client with a full queue
};

class UdpRelay : public turn::RelayPorts {
 public:
  static absl::StatusOr<std::unique_ptr<UdpRelay>> Create(RelayOptions opts);
  ~UdpRelay() override;

  // Serves until `stop`.
  void Run(std::stop_token stop);
  uint16_t port() const { return port_; }  // the bound client port
  turn::Counters counters() const;
  TcpCounters tcp_counters() const;
  // The other relays' relayed IPs (Kubernetes: from the relay Service); taken by the
  // loop at its next turn. This relay's own is always allowed.
  void SetPeerRelays(std::vector<net::IpAddress> ips);
  // The TURN shared secrets (a rotation); taken by the loop at its next turn.
  void SetSecrets(std::vector<std::string> secrets);
  size_t allocations() const;
  // Datagrams from one allocation to another of this relay, delivered without the kernel.
  uint64_t delivered_locally() const;

  // RelayPorts
  absl::StatusOr<net::Endpoint> Open(uint64_t id, bool even_port) override;
  void Close(uint64_t id) override;

 private:
  explicit UdpRelay(RelayOptions opts);
  void Flush(std::vector<turn::Send>& out);
  void FlushSends(std::vector<turn::Send>& out);
  // Sends from one of this relay's allocations to another's relayed address become that
  // allocation's input at once (marked kDelivered in `out`; its output in `delivered`).
  void DeliverLocally(std::vector<turn::Send>& out, std::vector<turn::Send>& delivered);
  static constexpr uint64_t kDelivered = ~uint64_t{0};
  void Drain(int fd, uint64_t allocation, int64_t now_ms, std::vector<turn::Send>& out);
  // TCP clients: whole STUN messages and ChannelData frames out of each byte stream.
  struct TcpClient {
    int fd = -1;
    net::Endpoint remote;
    turn::StreamFramer in;
    std::vector<uint8_t> out;  // queued answers and data; sent from out_at
    size_t out_at = 0;
    int64_t deadline_ms = 0;        // to hold an allocation; 0 while it holds one
    int64_t partial_since_ms = 0;   // when the frame not yet whole began; 0: none
    uint32_t events = 0;            // what epoll watches
    bool dirty = false;             // frames queued since the last flush
  };
  void Accept(int64_t now_ms);
  void ReadTcp(uint64_t key, int64_t now_ms, std::vector<turn::Send>& out);
  // Queues `frame` (and its padding); false when the client's queue is full.
  bool WriteTcp(uint64_t key, TcpClient& c, absl::Span<const uint8_t> frame);
  // Sends what is queued; false when the connection is broken.
  bool FlushTcp(TcpClient& c);
  void FlushDirtyTcp();
  void WatchTcp(uint64_t key, TcpClient& c);
  void CloseTcp(uint64_t key);
  // Deadlines, the listener re-armed after running out of descriptors.
  void TickTcp(int64_t now_ms);

  RelayOptions opts_;
  std::unique_ptr<turn::TurnServer> server_;
  int listen_fd_ = -1;
  int tcp_fd_ = -1;
  std::map<uint64_t, TcpClient> tcp_;             // epoll key → connection
  std::map<net::Endpoint, uint64_t> tcp_by_remote_;
  std::map<net::IpAddress, size_t> tcp_per_address_;
  std::vector<uint64_t> dirty_tcp_;  // connections with frames to send
  uint64_t next_tcp_ = 0;
  int64_t listener_paused_until_ms_ = 0;  // out of descriptors: accept again then
  TcpCounters tcp_stats_;  // loop thread only
  int epoll_fd_ = -1;
  uint16_t port_ = 0;
  uint32_t next_port_ = 0;  // rotating cursor in [port_min, port_max]
  std::map<uint64_t, int> fd_of_;  // allocation → its socket
  std::map<uint16_t, uint64_t> alloc_by_port_;  // relayed port → allocation
  std::map<uint64_t, uint16_t> port_of_;        // allocation → relayed port
  int64_t now_ms_ = 0;                          // this loop turn's time
  mutable std::mutex stats_mu_;
  turn::Counters stats_;  // copied from the server once per loop turn
  size_t allocations_ = 0;
  uint64_t local_ = 0;       // loop thread only
  uint64_t local_stat_ = 0;  // guarded by stats_mu_
  TcpCounters tcp_stat_;     // guarded by stats_mu_
  std::optional<std::vector<net::IpAddress>> peer_relays_;  // guarded by stats_mu_; for the loop
  std::optional<std::vector<std::string>> secrets_;          // guarded by stats_mu_; for the loop
};

}  // namespace weft::relay

#endif  // WEFT_RELAY_UDP_RELAY_H_
