// The agent's path-MTU probe socket (lib/net/mtu_probe): UDP on the WireGuard device
// only (SO_BINDTODEVICE: what arrives here came through the tunnel, from a peer that
// holds its key; the node's own pods can't reach it), DF set and the kernel's path MTU
// ignored (IP_PMTUDISC_PROBE), so a probe is sent at exactly the size asked. It sends our
// probes, takes the acks, and acks the peers' probes with the size that arrived.
#ifndef WEFT_NODE_AGENT_MTU_PROBER_H_
#define WEFT_NODE_AGENT_MTU_PROBER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"

namespace weft::agent {

class MtuProber {
 public:
  static absl::StatusOr<MtuProber> Open(const std::string& device, uint16_t port);
  MtuProber(MtuProber&& o) noexcept : fd_(o.fd_), port_(o.port_) { o.fd_ = -1; }
  MtuProber& operator=(MtuProber&&) = delete;
  ~MtuProber();

  // A probe whose IPv4 datagram is `ip_size` bytes. OutOfRange: larger than the device.
  absl::Status Send(const net::IpAddress& to, uint16_t seq, int ip_size);

  struct Ack {
    net::IpAddress from;
    uint16_t seq = 0;
    int size = 0;  // the probe's size when it arrived
  };
  // What arrived (non-blocking, bounded): acks to our probes are returned; probes from
  // addresses `is_peer` accepts are acked (at most 100 a second: nothing here amplifies);
  // anything else is dropped and counted.
  std::vector<Ack> Serve(absl::FunctionRef<bool(const net::IpAddress&)> is_peer);
  int fd() const { return fd_; }
  uint64_t dropped() const { return dropped_; }

 private:
  MtuProber(int fd, uint16_t port) : fd_(fd), port_(port) {}
  int fd_ = -1;
  uint16_t port_ = 0;
  uint64_t dropped_ = 0;
  int64_t window_ms_ = 0;
  int acks_in_window_ = 0;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_MTU_PROBER_H_
