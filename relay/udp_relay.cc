#include "relay/udp_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft::relay {
namespace {

constexpr int kBatch = 64;
constexpr size_t kMaxDatagram = 65536;

sockaddr_in ToSockaddr(const net::Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  std::memcpy(&a.sin_addr, e.ip.bytes(), 4);
  return a;
}

net::Endpoint FromSockaddr(const sockaddr_in& a) {
  net::Endpoint e;
  e.ip = net::IpAddress::FromBytes(net::Family::kV4, reinterpret_cast<const uint8_t*>(&a.sin_addr));
  e.port = ntohs(a.sin_port);
  return e;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<int> UdpSocket(const net::Endpoint& bind_to) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  sockaddr_in a = ToSockaddr(bind_to);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, absl::StrCat("bind ", bind_to.ToString()));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace

UdpRelay::UdpRelay(RelayOptions opts) : opts_(std::move(opts)) {}

absl::StatusOr<std::unique_ptr<UdpRelay>> UdpRelay::Create(RelayOptions opts) {
  if (!opts.listen.ip.is_v4() || !opts.relay_ip.is_v4()) return absl::InvalidArgumentError("IPv4 only for now");
  if (opts.port_min == 0 || opts.port_min > opts.port_max) return absl::InvalidArgumentError("bad relay port range");
  std::unique_ptr<UdpRelay> r(new UdpRelay(std::move(opts)));
  auto fd = UdpSocket(r->opts_.listen);
  if (!fd.ok()) return fd.status();
  r->listen_fd_ = *fd;
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  getsockname(r->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  r->port_ = ntohs(bound.sin_port);
  r->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (r->epoll_fd_ < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // allocation 0: the client socket
  epoll_ctl(r->epoll_fd_, EPOLL_CTL_ADD, r->listen_fd_, &ev);
  r->server_ = std::make_unique<turn::TurnServer>(r->opts_.turn, *r);
  return r;
}

UdpRelay::~UdpRelay() {
  for (const auto& [id, fd] : fd_of_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::StatusOr<net::Endpoint> UdpRelay::Open(uint64_t id, bool even_port) {
  const uint32_t span = uint32_t{opts_.port_max} - opts_.port_min + 1;
  for (uint32_t i = 0; i < std::min<uint32_t>(span, 512); ++i) {  // bounded search
    const uint16_t port = static_cast<uint16_t>(opts_.port_min + (next_port_++ % span));
    if (even_port && port % 2 != 0) continue;
    auto fd = UdpSocket(net::Endpoint{opts_.listen.ip, port});
    if (!fd.ok()) continue;  // in use: try the next
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, *fd, &ev);
    fd_of_[id] = *fd;
    return net::Endpoint{opts_.relay_ip, port};
  }
  return absl::ResourceExhaustedError("no free relay port");
}

void UdpRelay::Close(uint64_t id) {
  auto it = fd_of_.find(id);
  if (it == fd_of_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
  close(it->second);
  fd_of_.erase(it);
}

void UdpRelay::Flush(std::vector<turn::Send>& out) {
  // Consecutive datagrams from one socket go out in one sendmmsg.
  size_t i = 0;
  while (i < out.size()) {
    const uint64_t from = out[i].allocation;
    int fd = listen_fd_;
    if (from != 0) {
      auto it = fd_of_.find(from);
      if (it == fd_of_.end()) {
        ++i;
        continue;
      }
      fd = it->second;
    }
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_in to[kBatch];
    int n = 0;
    while (i < out.size() && out[i].allocation == from && n < kBatch) {
      to[n] = ToSockaddr(out[i].to);
      iov[n] = {out[i].data.data(), out[i].data.size()};
      msgs[n] = {};
      msgs[n].msg_hdr.msg_name = &to[n];
      msgs[n].msg_hdr.msg_namelen = sizeof(to[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      ++n;
      ++i;
    }
    int sent = 0;
    while (sent < n) {  // a full send buffer drops the rest (UDP), never blocks the loop
      int r = sendmmsg(fd, msgs + sent, n - sent, MSG_DONTWAIT);
      if (r <= 0) break;
      sent += r;
    }
  }
  out.clear();
}

void UdpRelay::Drain(int fd, uint64_t allocation, int64_t now_ms, std::vector<turn::Send>& out) {
  static thread_local std::vector<uint8_t> bufs(kBatch * kMaxDatagram);
  for (int round = 0; round < 16; ++round) {  // bounded: other sockets get their turn
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_in from[kBatch];
    for (int k = 0; k < kBatch; ++k) {
      iov[k] = {bufs.data() + k * kMaxDatagram, kMaxDatagram};
      msgs[k] = {};
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof(from[k]);
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int k = 0; k < n; ++k) {
      absl::Span<const uint8_t> pkt(bufs.data() + k * kMaxDatagram, msgs[k].msg_len);
      const net::Endpoint src = FromSockaddr(from[k]);
      if (allocation == 0) server_->OnClient(src, pkt, now_ms, out);
      else server_->OnPeer(allocation, src, pkt, now_ms, out);
    }
    Flush(out);
    if (n < kBatch) return;
  }
}

void UdpRelay::Run(std::stop_token stop) {
  std::vector<turn::Send> out;
  int64_t last_expire = NowMs();
  epoll_event events[64];
  while (!stop.stop_requested()) {
    const int n = epoll_wait(epoll_fd_, events, 64, 200);
    const int64_t now = NowMs();
    for (int k = 0; k < n; ++k) {
      const uint64_t id = events[k].data.u64;
      int fd = listen_fd_;
      if (id != 0) {
        auto it = fd_of_.find(id);
        if (it == fd_of_.end()) continue;  // closed earlier in this turn
        fd = it->second;
      }
      Drain(fd, id, now, out);
    }
    if (now - last_expire >= 1000) {
      server_->Expire(now);
      last_expire = now;
    }
    std::lock_guard<std::mutex> l(stats_mu_);
    stats_ = server_->counters();
    allocations_ = server_->allocations();
  }
}

turn::Counters UdpRelay::counters() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return stats_;
}

size_t UdpRelay::allocations() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return allocations_;
}

}  // namespace weft::relay
