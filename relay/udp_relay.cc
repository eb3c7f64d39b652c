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
// epoll keys: allocations count up from 1; TCP connections and the listeners live high.
constexpr uint64_t kTcpListenKey = 1ull << 62;
constexpr uint64_t kTcpKeyBase = (1ull << 62) + 1;
constexpr size_t kTcpOutLimit = 4 << 20;  // a client that stops reading loses data, not the server

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
  sockaddr_in a = net::ToSockaddrV4(bind_to);
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
  // TCP on the same address and port, for clients whose networks drop UDP.
  r->tcp_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(r->tcp_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in ta = net::ToSockaddrV4(net::Endpoint{r->opts_.listen.ip, r->port_});
  if (bind(r->tcp_fd_, reinterpret_cast<sockaddr*>(&ta), sizeof(ta)) != 0 || listen(r->tcp_fd_, 512) != 0) {
    return absl::ErrnoToStatus(errno, "TCP listen");
  }
  ev.data.u64 = kTcpListenKey;
  epoll_ctl(r->epoll_fd_, EPOLL_CTL_ADD, r->tcp_fd_, &ev);
  r->server_ = std::make_unique<turn::TurnServer>(r->opts_.turn, *r);
  return r;
}

UdpRelay::~UdpRelay() {
  for (const auto& [id, fd] : fd_of_) close(fd);
  for (const auto& [key, c] : tcp_) close(c.fd);
  if (tcp_fd_ >= 0) close(tcp_fd_);
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
    alloc_by_port_[port] = id;
    port_of_[id] = port;
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
  if (auto p = port_of_.find(id); p != port_of_.end()) {
    alloc_by_port_.erase(p->second);
    port_of_.erase(p);
  }
}

void UdpRelay::DeliverLocally(std::vector<turn::Send>& out, std::vector<turn::Send>& delivered) {
  for (auto& s : out) {
    if (s.allocation == 0 || s.allocation == kDelivered || s.to.ip != opts_.relay_ip) continue;
    auto to = alloc_by_port_.find(s.to.port);
    auto from = port_of_.find(s.allocation);
    if (to == alloc_by_port_.end() || from == port_of_.end()) continue;
    // As if it had come in on that allocation's socket from this one's: the same
    // permission checks, one copy, no kernel round trip.
    server_->OnPeer(to->second, net::Endpoint{opts_.relay_ip, from->second}, s.data, now_ms_, delivered);
    s.allocation = kDelivered;
    ++local_;
  }
}

void UdpRelay::Flush(std::vector<turn::Send>& out) {
  // Between two allocations of this relay (both ends of a relayed pair on it): straight
  // to the other allocation's client. What that produces goes to clients only.
  std::vector<turn::Send> delivered;
  if (!alloc_by_port_.empty()) DeliverLocally(out, delivered);
  if (!delivered.empty()) {
    FlushSends(delivered);
    delivered.clear();
  }
  FlushSends(out);
  out.clear();
}

void UdpRelay::FlushSends(std::vector<turn::Send>& out) {
  // Consecutive datagrams from one socket go out in one sendmmsg.
  size_t i = 0;
  while (i < out.size()) {
    if (out[i].allocation == 0 && !tcp_by_remote_.empty()) {
      if (auto t = tcp_by_remote_.find(out[i].to); t != tcp_by_remote_.end()) {
        WriteTcp(tcp_.at(t->second), out[i].data);
        ++i;
        continue;
      }
    }
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
    while (i < out.size() && out[i].allocation == from && n < kBatch &&
           (from != 0 || tcp_by_remote_.empty() || !tcp_by_remote_.contains(out[i].to))) {
      to[n] = net::ToSockaddrV4(out[i].to);
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
      const net::Endpoint src = net::FromSockaddrV4(from[k]);
      if (allocation == 0) server_->OnClient(src, pkt, now_ms, out);
      else server_->OnPeer(allocation, src, pkt, now_ms, out);
    }
    Flush(out);
    if (n < kBatch) return;
  }
}

void UdpRelay::Accept() {
  for (int k = 0; k < 64; ++k) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    int fd = accept4(tcp_fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    const uint64_t key = kTcpKeyBase + next_tcp_++;
    TcpClient c;
    c.fd = fd;
    c.remote = net::FromSockaddrV4(from);
    tcp_by_remote_[c.remote] = key;
    tcp_[key] = std::move(c);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

void UdpRelay::CloseTcp(uint64_t key) {
  auto it = tcp_.find(key);
  if (it == tcp_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  close(it->second.fd);
  tcp_by_remote_.erase(it->second.remote);
  tcp_.erase(it);
}

void UdpRelay::WriteTcp(TcpClient& c, absl::Span<const uint8_t> frame) {
  // ChannelData is padded to a multiple of 4 on streams (RFC 8656 section 12.5).
  const bool channel_data = !frame.empty() && (frame[0] & 0xC0) == 0x40;
  const size_t pad = channel_data ? (4 - frame.size() % 4) % 4 : 0;
  if (c.out.size() + frame.size() + pad > kTcpOutLimit) return;
  c.out.insert(c.out.end(), frame.begin(), frame.end());
  c.out.insert(c.out.end(), pad, 0);
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    c.out.erase(c.out.begin(), c.out.begin() + n);
  }
  epoll_event ev{};
  ev.events = static_cast<uint32_t>(EPOLLIN) | (c.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  ev.data.u64 = tcp_by_remote_.at(c.remote);
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void UdpRelay::ReadTcp(uint64_t key, int64_t now_ms, std::vector<turn::Send>& out) {
  auto it = tcp_.find(key);
  if (it == tcp_.end()) return;
  TcpClient& c = it->second;
  if (!c.out.empty()) WriteTcp(c, {});
  uint8_t buf[65536];
  for (int round = 0; round < 16; ++round) {
    ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      CloseTcp(key);  // the allocation stays until it expires or is refreshed away
      return;
    }
    if (n < 0) break;
    c.in.insert(c.in.end(), buf, buf + n);
    if (c.in.size() > (1 << 20)) {
      CloseTcp(key);  // no frame is that long: not a TURN client
      return;
    }
  }
  size_t at = 0;
  while (c.in.size() - at >= 4) {
    const uint8_t* p = c.in.data() + at;
    size_t frame;
    if ((p[0] & 0xC0) == 0x40) {
      const size_t len = size_t{p[2]} << 8 | p[3];
      frame = 4 + len;
      const size_t padded = frame + (4 - frame % 4) % 4;
      if (c.in.size() - at < padded) break;
      server_->OnClient(c.remote, absl::Span<const uint8_t>(p, frame), now_ms, out);
      at += padded;
      continue;
    }
    if ((p[0] & 0xC0) != 0) {
      CloseTcp(key);  // neither STUN nor ChannelData: the stream is lost
      return;
    }
    if (c.in.size() - at < stun::kHeaderSize) break;
    frame = stun::kHeaderSize + (size_t{p[2]} << 8 | p[3]);
    if (c.in.size() - at < frame) break;
    server_->OnClient(c.remote, absl::Span<const uint8_t>(p, frame), now_ms, out);
    at += frame;
  }
  c.in.erase(c.in.begin(), c.in.begin() + at);
  Flush(out);
}

void UdpRelay::Run(std::stop_token stop) {
  std::vector<turn::Send> out;
  int64_t last_expire = NowMs();
  epoll_event events[64];
  while (!stop.stop_requested()) {
    const int n = epoll_wait(epoll_fd_, events, 64, 200);
    const int64_t now = NowMs();
    now_ms_ = now;
    for (int k = 0; k < n; ++k) {
      const uint64_t id = events[k].data.u64;
      if (id == kTcpListenKey) {
        Accept();
        continue;
      }
      if (id >= kTcpKeyBase) {
        ReadTcp(id, now, out);
        continue;
      }
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
    local_stat_ = local_;
  }
}

turn::Counters UdpRelay::counters() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return stats_;
}

uint64_t UdpRelay::delivered_locally() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return local_stat_;
}

size_t UdpRelay::allocations() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return allocations_;
}

}  // namespace weft::relay
