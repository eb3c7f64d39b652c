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
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "route lookup socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(9);
  std::memcpy(&sa.sin_addr, dst.bytes(), 4);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  if (r == 0) r = getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  int e = errno;
  close(fd);
  if (r != 0) return ErrnoStatus(e, absl::StrCat("no route to ", dst.ToString()));
  return net::IpAddress::FromBytes(net::Family::kV4, reinterpret_cast<uint8_t*>(&local.sin_addr));
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
  // Checksum over the IPv4 pseudo-header (RFC 768).
  uint32_t sum = 0;
  sum = Sum16(src.ip.bytes(), 4, sum);
  sum = Sum16(dst.ip.bytes(), 4, sum);
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
  int rx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
  if (rx < 0) return ErrnoStatus(errno, "raw socket (receive; needs CAP_NET_RAW)");
  std::vector<sock_filter> prog = StunPortFilter(port);
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (setsockopt(rx, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) {
    int e = errno;
    close(rx);
    return ErrnoStatus(e, "attach STUN filter");
  }
  // Whatever arrived between socket() and the filter was not filtered: drop it.
  char junk[2048];
  while (recv(rx, junk, sizeof(junk), MSG_DONTWAIT) > 0) {
  }
  int tx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
  if (tx < 0) {
    int e = errno;
    close(rx);
    return ErrnoStatus(e, "raw socket (send)");
  }
  // The send socket must never receive: an empty filter drops everything.
  sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
  sock_fprog none{1, &drop};
  setsockopt(tx, SOL_SOCKET, SO_ATTACH_FILTER, &none, sizeof(none));
  return SharedPortStun(tx, rx, port);
}

SharedPortStun::SharedPortStun(SharedPortStun&& other) noexcept
    : tx_fd_(std::exchange(other.tx_fd_, -1)), rx_fd_(std::exchange(other.rx_fd_, -1)), port_(other.port_) {}

SharedPortStun::~SharedPortStun() {
  if (tx_fd_ >= 0) close(tx_fd_);
  if (rx_fd_ >= 0) close(rx_fd_);
}

absl::Status SharedPortStun::Send(absl::Span<const uint8_t> payload, const net::Endpoint& to, int ttl) {
  if (!to.ip.is_v4()) return absl::UnimplementedError("shared-port STUN is IPv4 only");
  auto src = SourceFor(to.ip);
  if (!src.ok()) return src.status();
  std::vector<uint8_t> dgram = BuildUdpDatagram({*src, port_}, to, payload);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::memcpy(&sa.sin_addr, to.ip.bytes(), 4);
  // The TTL rides on the datagram (a control message), not on the socket.
  iovec iov{dgram.data(), dgram.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &sa;
  msg.msg_namelen = sizeof(sa);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (ttl > 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_TTL;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &ttl, sizeof(int));
  }
  if (sendmsg(tx_fd_, &msg, 0) < 0) return ErrnoStatus(errno, absl::StrCat("send STUN to ", to.ToString()));
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
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no STUN datagram");
    pollfd p{rx_fd_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(left.count()));
  }
}

}  // namespace weft::stun
