#include "lib/stun/shared_port.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"
#include "lib/stun/stun_message.h"

namespace weft::stun {
namespace {

uint32_t Sum16(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}

// The source address the kernel would pick for `dst`: connect a UDP socket (no packet
// is sent) and ask.
absl::StatusOr<net::IpAddress> SourceFor(const net::IpAddress& dst) {
  int fd = socket(dst.af(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "route lookup socket");
  sockaddr_storage sa, local{};
  const socklen_t sa_len = net::ToSockaddr({dst, 9}, &sa);
  socklen_t len = sizeof(local);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&sa), sa_len);
  if (r == 0) r = getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  int e = errno;
  close(fd);
  if (r != 0) return ErrnoStatus(e, absl::StrCat("no route to ", dst.ToString()));
  auto src = net::FromSockaddr(&local, len);
  if (!src) return absl::InternalError(absl::StrCat("no source address towards ", dst.ToString()));
  return src->ip;
}

// A raw socket of `family` for UDP, with `filter` attached before anything is read.
absl::StatusOr<int> FilteredRawSocket(int family, std::vector<sock_filter> filter, int flags) {
  int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | flags, IPPROTO_UDP);
  if (fd < 0) return ErrnoStatus(errno, "raw socket (needs CAP_NET_RAW)");
  sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    int e = errno;
    close(fd);
    return ErrnoStatus(e, "attach socket filter");
  }
  // Whatever arrived between socket() and the filter was not filtered: drop it.
  char junk[2048];
  while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0) {
  }
  return fd;
}

}  // namespace

std::vector<sock_filter> StunPortFilter(uint16_t port) {
  return {
      // A = IP protocol; UDP only.
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 8),
      // Fragments (offset != 0 or more-fragments) carry no UDP header we can read.
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 6, 0),
      // X = IP header length.
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
      // UDP destination port.
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 3),
      // STUN magic cookie: payload bytes 4..7 (UDP header is 8 bytes).
      BPF_STMT(BPF_LD | BPF_W | BPF_IND, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kMagicCookie, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
}

std::vector<sock_filter> StunPortFilter6(uint16_t port) {
  // An IPv6 raw socket's filter sees the datagram from its UDP header on (the kernel has
  // taken the IPv6 header and its extensions off), and only unfragmented ones.
  return {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kMagicCookie, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
}

std::vector<uint8_t> BuildUdpDatagram(const net::Endpoint& src, const net::Endpoint& dst,
                                      absl::Span<const uint8_t> payload) {
  const size_t len = 8 + payload.size();
  std::vector<uint8_t> d(len);
  d[0] = static_cast<uint8_t>(src.port >> 8);
  d[1] = static_cast<uint8_t>(src.port);
  d[2] = static_cast<uint8_t>(dst.port >> 8);
  d[3] = static_cast<uint8_t>(dst.port);
  d[4] = static_cast<uint8_t>(len >> 8);
  d[5] = static_cast<uint8_t>(len);
  std::memcpy(d.data() + 8, payload.data(), payload.size());
  // Checksum over the pseudo-header: IPv4's (RFC 768) or IPv6's (RFC 8200 8.1), whose
  // sums of these fields are the same but for the addresses' lengths.
  uint32_t sum = 0;
  sum = Sum16(src.ip.bytes(), static_cast<size_t>(src.ip.byte_length()), sum);
  sum = Sum16(dst.ip.bytes(), static_cast<size_t>(dst.ip.byte_length()), sum);
  sum += IPPROTO_UDP;
  sum += static_cast<uint32_t>(len);
  sum = Sum16(d.data(), d.size(), sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t csum = static_cast<uint16_t>(~sum);
  if (csum == 0) csum = 0xffff;  // 0 means "no checksum"
  d[6] = static_cast<uint8_t>(csum >> 8);
  d[7] = static_cast<uint8_t>(csum);
  return d;
}

absl::StatusOr<SharedPortStun> SharedPortStun::Open(uint16_t port) {
  ASSIGN_OR_RETURN(const int rx, FilteredRawSocket(AF_INET, StunPortFilter(port), SOCK_NONBLOCK));
  // The send sockets must never receive: an empty filter drops everything.
  auto tx = FilteredRawSocket(AF_INET, {BPF_STMT(BPF_RET | BPF_K, 0)}, 0);
  if (!tx.ok()) {
    close(rx);
    return tx.status();
  }
  SharedPortStun s(*tx, rx, port);
  // IPv6 where the node has it (a kernel without IPv6 simply has no IPv6 STUN).
  if (auto rx6 = FilteredRawSocket(AF_INET6, StunPortFilter6(port), SOCK_NONBLOCK); rx6.ok()) {
    if (auto tx6 = FilteredRawSocket(AF_INET6, {BPF_STMT(BPF_RET | BPF_K, 0)}, 0); tx6.ok()) {
      s.tx6_fd_ = *tx6;
      s.rx6_fd_ = *rx6;
    } else {
      close(*rx6);
    }
  }
  return s;
}

SharedPortStun::SharedPortStun(SharedPortStun&& other) noexcept
    : tx_fd_(std::exchange(other.tx_fd_, -1)),
      rx_fd_(std::exchange(other.rx_fd_, -1)),
      tx6_fd_(std::exchange(other.tx6_fd_, -1)),
      rx6_fd_(std::exchange(other.rx6_fd_, -1)),
      port_(other.port_) {}

SharedPortStun::~SharedPortStun() {
  for (int fd : {tx_fd_, rx_fd_, tx6_fd_, rx6_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status SharedPortStun::Send(absl::Span<const uint8_t> payload, const net::Endpoint& to, int ttl) {
  const bool v4 = to.ip.is_v4();
  if (!v4 && tx6_fd_ < 0) return absl::UnavailableError("no IPv6 here: shared-port STUN over IPv6 is off");
  auto src = SourceFor(to.ip);
  if (!src.ok()) return src.status();
  std::vector<uint8_t> dgram = BuildUdpDatagram({*src, port_}, to, payload);
  // Port 0 in a raw socket's address: the UDP header in the payload carries the ports.
  sockaddr_storage sa;
  const socklen_t sa_len = net::ToSockaddr({to.ip, 0}, &sa);
  // The TTL (hop limit) rides on the datagram (a control message), not on the socket.
  iovec iov{dgram.data(), dgram.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &sa;
  msg.msg_namelen = sa_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (ttl > 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
    c->cmsg_type = v4 ? IP_TTL : IPV6_HOPLIMIT;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &ttl, sizeof(int));
  }
  if (sendmsg(v4 ? tx_fd_ : tx6_fd_, &msg, 0) < 0) return ErrnoStatus(errno, absl::StrCat("send STUN to ", to.ToString()));
  return absl::OkStatus();
}

absl::StatusOr<SharedPortStun::Datagram> SharedPortStun::Receive(std::chrono::milliseconds timeout) {
  uint8_t buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ssize_t n = recv(rx_fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return ErrnoStatus(errno, "receive STUN");
    if (n > 0) {
      const size_t ihl = static_cast<size_t>(buf[0] & 0x0f) * 4;
      if (static_cast<size_t>(n) < ihl + 8 || ihl < 20) continue;  // the filter makes this rare
      Datagram d;
      d.from.ip = net::IpAddress::FromBytes(net::Family::kV4, buf + 12);
      d.from.port = static_cast<uint16_t>(buf[ihl] << 8 | buf[ihl + 1]);
      const size_t udp_len = static_cast<size_t>(buf[ihl + 4] << 8 | buf[ihl + 5]);
      const size_t avail = static_cast<size_t>(n) - ihl;
      if (udp_len < 8 || udp_len > avail) continue;
      d.payload.assign(buf + ihl + 8, buf + ihl + udp_len);
      return d;
    }
    if (rx6_fd_ >= 0) {
      // IPv6: the datagram from its UDP header on; the source address from recvfrom.
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      n = recvfrom(rx6_fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return ErrnoStatus(errno, "receive STUN (IPv6)");
      const std::optional<net::Endpoint> src = n >= 8 ? net::FromSockaddr(&from, from_len) : std::nullopt;
      if (src && !src->ip.is_v4()) {
        const size_t udp_len = static_cast<size_t>(buf[4] << 8 | buf[5]);
        if (udp_len < 8 || udp_len > static_cast<size_t>(n)) continue;
        Datagram d;
        d.from.ip = src->ip;  // a raw socket's address has no port: the UDP header's
        d.from.port = static_cast<uint16_t>(buf[0] << 8 | buf[1]);
        d.payload.assign(buf + 8, buf + udp_len);
        return d;
      }
      if (n > 0) continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no STUN datagram");
    pollfd p[2] = {{rx_fd_, POLLIN, 0}, {rx6_fd_, POLLIN, 0}};
    poll(p, rx6_fd_ >= 0 ? 2 : 1, static_cast<int>(left.count()));
  }
}

}  // namespace weft::stun
