#include "node-agent/tunnel_probe.h"

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "lib/net/endpoint.h"
#include "lib/status/errno_status.h"

namespace weft::agent {
namespace {

absl::StatusOr<int> BoundRawSocket(int family, int protocol, const std::string& device) {
  int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  if (fd < 0) return ErrnoStatus(errno, family == AF_INET ? "raw ICMP socket (needs CAP_NET_RAW)" : "raw ICMPv6 socket");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size())) != 0) {
    const int e = errno;
    close(fd);
    return ErrnoStatus(e, "bind the probe socket to " + device);
  }
  return fd;
}

}  // namespace

absl::StatusOr<TunnelProbe> TunnelProbe::Open(const std::string& device) {
  auto fd = BoundRawSocket(AF_INET, IPPROTO_ICMP, device);
  if (!fd.ok()) return fd.status();
  int fd6 = -1;
  if (auto s = BoundRawSocket(AF_INET6, IPPROTO_ICMPV6, device); s.ok()) {
    fd6 = *s;
    // Echo replies only: not every neighbour solicitation and router advertisement.
    icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
    setsockopt(fd6, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
  }
  std::random_device rd;
  return TunnelProbe(*fd, fd6, static_cast<uint16_t>(rd()));
}

TunnelProbe::~TunnelProbe() {
  if (fd_ >= 0) close(fd_);
  if (fd6_ >= 0) close(fd6_);
}

absl::Status TunnelProbe::Send(const net::IpAddress& to, uint16_t seq, size_t payload_size) {
  const bool v4 = to.is_v4();
  if (!v4 && fd6_ < 0) return absl::FailedPreconditionError("no ICMPv6 socket: " + to.ToString());
  const std::vector<uint8_t> m = v4 ? net::BuildEchoRequest(id_, seq, payload_size)
                                    : net::BuildEchoRequest6(id_, seq, payload_size);
  sockaddr_storage sa;
  const socklen_t len = net::ToSockaddr({to, 0}, &sa);
  if (sendto(v4 ? fd_ : fd6_, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&sa), len) < 0) {
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
  for (int i = 0; fd6_ >= 0 && i < 256; ++i) {  // bounded, as above
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = recvfrom(fd6_, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) break;
    auto src = net::FromSockaddr(&from, from_len);
    if (!src) continue;
    auto r = net::ParseEchoReply6(absl::MakeConstSpan(buf, static_cast<size_t>(n)), src->ip);
    if (r && r->id == id_) out.push_back(*r);
  }
  return out;
}

}  // namespace weft::agent
