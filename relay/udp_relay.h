// weft-relay's event loop: one UDP socket and one TCP listener for clients (STUN Binding
// and TURN; TCP for networks that block UDP, RFC 8656 section 3.1 framing), one UDP
// socket per allocation for its peers, epoll, and batched I/O (recvmmsg/sendmmsg). The
// protocol is lib/turn's TurnServer; this file only moves datagrams.
#ifndef WEFT_RELAY_UDP_RELAY_H_
#define WEFT_RELAY_UDP_RELAY_H_

#include <atomic>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "lib/turn/turn_server.h"

namespace weft::relay {

struct RelayOptions {
  net::Endpoint listen;           // where clients reach the server
  net::IpAddress relay_ip;        // the relayed addresses' IP (as peers reach it)
  uint16_t port_min = 49152, port_max = 65535;
  turn::ServerOptions turn;
};

class UdpRelay : public turn::RelayPorts {
 public:
  static absl::StatusOr<std::unique_ptr<UdpRelay>> Create(RelayOptions opts);
  ~UdpRelay() override;

  // Serves until `stop`.
  void Run(std::stop_token stop);
  uint16_t port() const { return port_; }  // the bound client port
  turn::Counters counters() const;
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
    std::vector<uint8_t> in, out;
  };
  void Accept();
  void ReadTcp(uint64_t key, int64_t now_ms, std::vector<turn::Send>& out);
  void WriteTcp(TcpClient& c, absl::Span<const uint8_t> frame);
  void CloseTcp(uint64_t key);

  RelayOptions opts_;
  std::unique_ptr<turn::TurnServer> server_;
  int listen_fd_ = -1;
  int tcp_fd_ = -1;
  std::map<uint64_t, TcpClient> tcp_;             // epoll key → connection
  std::map<net::Endpoint, uint64_t> tcp_by_remote_;
  uint64_t next_tcp_ = 0;
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
};

}  // namespace weft::relay

#endif  // WEFT_RELAY_UDP_RELAY_H_
