#include "node-agent/tunnel_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "lib/net/endpoint.h"
#include "lib/status/errno_status.h"

namespace weft::agent {

absl::StatusOr<TunnelProbe> TunnelProbe::Open(const std::string& device) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (fd < 0) return ErrnoStatus(errno, "raw ICMP socket (needs CAP_NET_RAW)");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size())) != 0) {
    const int e = errno;
    close(fd);
    return ErrnoStatus(e, "bind the probe socket to " + device);
  }
  std::random_device rd;
  return TunnelProbe(fd, static_cast<uint16_t>(rd()));
}

TunnelProbe::~TunnelProbe() {
  if (fd_ >= 0) close(fd_);
}

absl::Status TunnelProbe::Send(const net::IpAddress& to, uint16_t seq, size_t payload_size) {
  const std::vector<uint8_t> m = net::BuildEchoRequest(id_, seq, payload_size);
  const sockaddr_in a = net::ToSockaddrV4({to, 0});
  if (sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) < 0) {
    return ErrnoStatus(errno, "probe to " + to.ToString());
  }
  return absl::OkStatus();
}

std::vector<net::EchoReply> TunnelProbe::Drain() {
  std::vector<net::EchoReply> out;
  uint8_t buf[2048];
  for (int i = 0; i < 256; ++i) {  // bounded: what arrived, not a stream that never stops
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    auto r = net::ParseEchoReply(absl::MakeConstSpan(buf, static_cast<size_t>(n)));
    if (r && r->id == id_) out.push_back(*r);
  }
  return out;
}

}  // namespace weft::agent
