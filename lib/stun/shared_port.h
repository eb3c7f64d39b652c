// STUN from a UDP port that another socket owns (the WireGuard port, kernel or
// wireguard-go), so that the answer describes *that port's* NAT mapping.
//
// Out: a raw socket sends UDP datagrams with a hand-made header whose source port is the
// shared port; the kernel (and every NAT on the way) treats them exactly like the
// owner's traffic. In: a raw socket with a classic BPF filter sees copies of inbound
// UDP datagrams for that port whose payload carries the STUN magic cookie; the owner
// still receives its own traffic (and ignores the STUN answers: WireGuard drops
// anything that is not one of its four message types). The technique of Netbird's
// sharedsock and wireguard-tools' contrib/nat-hole-punching. IPv4, and IPv6 where the
// node has it (a raw IPv6 socket sees datagrams from their UDP header on).
#ifndef WEFT_LIB_STUN_SHARED_PORT_H_
#define WEFT_LIB_STUN_SHARED_PORT_H_

#include <linux/filter.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/net/endpoint.h"

namespace weft::stun {

// The classic BPF program: accept IPv4/UDP, not a fragment, destination `port`, payload
// word 1 == magic cookie. Exposed for tests.
std::vector<::sock_filter> StunPortFilter(uint16_t port);

// The same for an IPv6 raw socket, whose filter sees the UDP header at offset 0.
std::vector<::sock_filter> StunPortFilter6(uint16_t port);

// The UDP header (with checksum, over IPv4's or IPv6's pseudo-header) + payload for
// `src` → `dst`, both of one family (pure; tests use it).
std::vector<uint8_t> BuildUdpDatagram(const net::Endpoint& src, const net::Endpoint& dst,
                                      absl::Span<const uint8_t> payload);

class SharedPortStun {
 public:
  // Opens both raw sockets in the calling thread's netns. Needs CAP_NET_RAW.
  static absl::StatusOr<SharedPortStun> Open(uint16_t port);

  SharedPortStun(SharedPortStun&& other) noexcept;
  SharedPortStun& operator=(SharedPortStun&&) = delete;
  ~SharedPortStun();

  // Sends `payload` from the shared port to `to` (source address: the route's). With
  // `ttl` > 0 the datagram carries that TTL: a punch that opens our NAT but dies before
  // it reaches the peer's.
  absl::Status Send(absl::Span<const uint8_t> payload, const net::Endpoint& to, int ttl = 0);

  struct Datagram {
    std::vector<uint8_t> payload;
    net::Endpoint from;
  };
  // The next STUN datagram for the port; DeadlineExceeded after `timeout`.
  absl::StatusOr<Datagram> Receive(std::chrono::milliseconds timeout);

  int receive_fd() const { return rx_fd_; }
  uint16_t port() const { return port_; }

 private:
  SharedPortStun(int tx, int rx, uint16_t port) : tx_fd_(tx), rx_fd_(rx), port_(port) {}
  int tx_fd_ = -1;
  int rx_fd_ = -1;
  int tx6_fd_ = -1;  // -1: no IPv6 on this node
  int rx6_fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace weft::stun

#endif  // WEFT_LIB_STUN_SHARED_PORT_H_
