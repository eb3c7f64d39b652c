#include "node-agent/mtu_prober.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/net/endpoint.h"
#include "lib/net/mtu_probe.h"
#include "lib/status/errno_status.h"
#include "lib/sys/steady_ms.h"

namespace weft::agent {

absl::StatusOr<MtuProber> MtuProber::Open(const std::string& device, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus(errno, "path MTU probe socket");
  MtuProber p(fd, port);
  const int probe = IP_PMTUDISC_PROBE, one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), static_cast<socklen_t>(device.size())) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe)) != 0) {
    return ErrnoStatus(errno, "path MTU probe socket on " + device);
  }
  const sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}, .sin_zero = {}};
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("path MTU probes: bind UDP ", port, " on ", device));
  }
  return p;
}

MtuProber::~MtuProber() {
  if (fd_ >= 0) close(fd_);
}

absl::Status MtuProber::Send(const net::IpAddress& to, uint16_t seq, int ip_size) {
  const std::vector<uint8_t> m = net::BuildMtuProbe(seq, static_cast<uint16_t>(ip_size));
  const sockaddr_in a = net::ToSockaddrV4({to, port_});
  if (sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) < 0) {
    if (errno == EMSGSIZE) return absl::OutOfRangeError(absl::StrCat("probe of ", ip_size, " bytes: larger than the device"));
    return ErrnoStatus(errno, "path MTU probe to " + to.ToString());
  }
  return absl::OkStatus();
}

std::vector<MtuProber::Ack> MtuProber::Serve(absl::FunctionRef<bool(const net::IpAddress&)> is_peer) {
  std::vector<Ack> out;
  uint8_t buf[65536];
  for (int i = 0; i < 256; ++i) {  // bounded: what arrived, not a stream that never stops
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const ssize_t n = recvfrom(fd_, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) break;
    auto m = net::ParseMtuProbe(absl::MakeConstSpan(buf, static_cast<size_t>(n)));
    const net::IpAddress src = net::FromSockaddrV4(from).ip;
    if (!m || ntohs(from.sin_port) != port_ || !is_peer(src)) {
      ++dropped_;
      continue;
    }
    if (m->type == net::MtuProbe::Type::kAck) {
      out.push_back({src, m->seq, m->size});
      continue;
    }
    const int64_t now = sys::SteadyMs();
    if (now - window_ms_ >= 1000) {
      window_ms_ = now;
      acks_in_window_ = 0;
    }
    if (++acks_in_window_ > 100) {
      ++dropped_;
      continue;
    }
    const std::vector<uint8_t> ack = net::BuildMtuAck(m->seq, static_cast<uint16_t>(n + net::kMtuProbeHeaders));
    (void)sendto(fd_, ack.data(), ack.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof(from));
  }
  return out;
}

}  // namespace weft::agent
