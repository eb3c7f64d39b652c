// The agent's authenticated path probe: an ICMP echo to a peer node's tunnel address
// (the first address of its pod CIDR, on its WireGuard device: IPv4's, or IPv6's in an
// IPv6-only pod network), sent into the local WireGuard device. WireGuard carries it on
// the peer's current endpoint; the peer's kernel answers through its own WireGuard. An
// answer proves the path works both ways and that the other end holds the peer's key:
// what one-way counters cannot tell.
#ifndef WEFT_NODE_AGENT_TUNNEL_PROBE_H_
#define WEFT_NODE_AGENT_TUNNEL_PROBE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/icmp_echo.h"
#include "lib/net/ip_address.h"

namespace weft::agent {

class TunnelProbe {
 public:
  // Raw ICMP and ICMPv6 sockets bound to `device` (needs CAP_NET_RAW), with an echo id of
  // their own. Without IPv6 on the node, IPv4's alone.
  static absl::StatusOr<TunnelProbe> Open(const std::string& device);
  TunnelProbe(TunnelProbe&& o) noexcept : fd_(o.fd_), fd6_(o.fd6_), id_(o.id_) { o.fd_ = o.fd6_ = -1; }
  TunnelProbe& operator=(TunnelProbe&&) = delete;
  ~TunnelProbe();

  absl::Status Send(const net::IpAddress& to, uint16_t seq, size_t payload_size = 16);
  // Echo replies to this prober that have arrived (non-blocking); others are dropped.
  std::vector<net::EchoReply> Drain();
  int fd() const { return fd_; }
  int fd6() const { return fd6_; }  // -1 without IPv6

 private:
  TunnelProbe(int fd, int fd6, uint16_t id) : fd_(fd), fd6_(fd6), id_(id) {}
  int fd_ = -1;
  int fd6_ = -1;
  uint16_t id_ = 0;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_TUNNEL_PROBE_H_
