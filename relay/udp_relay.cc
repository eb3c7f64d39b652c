#include "relay/udp_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/net/fragment_band.h"

namespace weft::relay {
namespace {

constexpr int kBatch = 64;
constexpr size_t kMaxDatagram = 65536;
// epoll keys: allocations count up from 1; TCP connections and the listeners live high.
constexpr uint64_t kTcpListenKey = 1ull << 62;
constexpr uint64_t kTcpKeyBase = (1ull << 62) + 1;
constexpr size_t kTcpReadChunk = 16 << 10;  // framed after every read: at most a frame and a chunk buffered

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
  // Peers: this relay's own relayed addresses at least; never its own service port.
  turn::PeerPolicyOptions& peers = r->opts_.turn.peers;
  if (std::find(peers.relay_ips.begin(), peers.relay_ips.end(), r->opts_.relay_ip) == peers.relay_ips.end()) {
    peers.relay_ips.push_back(r->opts_.relay_ip);
  }
  peers.own.push_back(net::Endpoint{r->opts_.listen.ip, r->port_});
  peers.own.push_back(net::Endpoint{r->opts_.relay_ip, r->port_});
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
    if (out[i].allocation == 0 && out[i].transport == turn::Transport::kTcp) {
      auto t = tcp_by_remote_.find(out[i].to);
      if (t == tcp_by_remote_.end() || !WriteTcp(t->second, tcp_.at(t->second), out[i].data)) ++tcp_stats_.dropped;
      ++i;
      continue;
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
           (from != 0 || out[i].transport == turn::Transport::kUdp)) {
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
    // A full send buffer drops the rest (UDP), never blocks the loop. IPv6's full-size
    // packets through a narrow path go without DF (lib/net/fragment_band.h).
    (void)net::SendmmsgWithFragmentBand(fd, msgs, n, MSG_DONTWAIT);
  }
  if (!dirty_tcp_.empty()) FlushDirtyTcp();
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

void UdpRelay::Accept(int64_t now_ms) {
  for (int k = 0; k < 64; ++k) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    int fd = accept4(tcp_fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the listener stays readable and would spin the loop. Stop
        // watching it for a while; the pending connections wait in the backlog.
        ++tcp_stats_.refused;
        epoll_event ev{};
        ev.data.u64 = kTcpListenKey;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, tcp_fd_, &ev);
        listener_paused_until_ms_ = now_ms + 100;
      }
      return;
    }
    const net::Endpoint remote = net::FromSockaddrV4(from);
    if (tcp_.size() >= opts_.max_tcp_connections || tcp_per_address_[remote.ip] >= opts_.max_tcp_per_address) {
      ++tcp_stats_.refused;
      if (tcp_per_address_[remote.ip] == 0) tcp_per_address_.erase(remote.ip);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // STUN answers and ChannelData go at once
    const uint64_t key = kTcpKeyBase + next_tcp_++;
    TcpClient& c = tcp_[key];
    c.fd = fd;
    c.remote = remote;
    c.deadline_ms = now_ms + opts_.tcp_allocate_timeout_ms;
    tcp_by_remote_[remote] = key;
    ++tcp_per_address_[remote.ip];
    c.events = EPOLLIN;
    epoll_event ev{};
    ev.events = c.events;
    ev.data.u64 = key;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

void UdpRelay::CloseTcp(uint64_t key) {
  auto it = tcp_.find(key);
  if (it == tcp_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  close(it->second.fd);
  const net::Endpoint remote = it->second.remote;
  tcp_by_remote_.erase(remote);
  if (auto p = tcp_per_address_.find(remote.ip); p != tcp_per_address_.end() && --p->second == 0) {
    tcp_per_address_.erase(p);
  }
  tcp_.erase(it);
  // RFC 8656 section 3.1: the allocation is the connection's; nobody else may use it.
  server_->ClientGone(turn::Client{turn::Transport::kTcp, remote});
}

void UdpRelay::WatchTcp(uint64_t key, TcpClient& c) {
  const size_t queued = c.out.size() - c.out_at;
  // A client that does not read what it asked for is not read either: its requests wait
  // in the kernel's buffers, not in this process.
  uint32_t want = queued < opts_.tcp_stop_reading_bytes ? static_cast<uint32_t>(EPOLLIN) : 0u;
  if (queued > 0) want |= static_cast<uint32_t>(EPOLLOUT);
  if (want == c.events) return;
  c.events = want;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = key;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

bool UdpRelay::FlushTcp(TcpClient& c) {
  while (c.out_at < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;  // reset, EPIPE
    if (n <= 0) break;
    c.out_at += static_cast<size_t>(n);
  }
  if (c.out_at == c.out.size()) {
    c.out.clear();
    c.out_at = 0;
    if (c.out.capacity() > (opts_.tcp_max_queued_bytes)) c.out.shrink_to_fit();
  } else if (c.out_at > c.out.size() / 2) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_at));
    c.out_at = 0;
  }
  return true;
}

bool UdpRelay::WriteTcp(uint64_t key, TcpClient& c, absl::Span<const uint8_t> frame) {
  // Answers always fit (reading stops at tcp_stop_reading_bytes, below the limit); data
  // relayed to a client that cannot take it is dropped like a full UDP buffer would.
  if (c.out.size() - c.out_at + frame.size() + 3 > opts_.tcp_max_queued_bytes) return false;
  turn::AppendStreamFrame(frame, c.out);
  if (!c.dirty) {  // sent once per loop step, however many frames (FlushDirtyTcp)
    c.dirty = true;
    dirty_tcp_.push_back(key);
  }
  return true;
}

void UdpRelay::FlushDirtyTcp() {
  std::vector<uint64_t> gone;  // the connection broke while we wrote
  for (uint64_t key : dirty_tcp_) {
    auto it = tcp_.find(key);
    if (it == tcp_.end()) continue;
    it->second.dirty = false;
    if (FlushTcp(it->second)) WatchTcp(key, it->second);
    else gone.push_back(key);
  }
  dirty_tcp_.clear();
  for (uint64_t key : gone) CloseTcp(key);
}

void UdpRelay::ReadTcp(uint64_t key, int64_t now_ms, std::vector<turn::Send>& out) {
  auto it = tcp_.find(key);
  if (it == tcp_.end()) return;
  TcpClient& c = it->second;
  const turn::Client client{turn::Transport::kTcp, c.remote};
  if (c.out_at < c.out.size()) {  // writable again (or broken: EPOLLERR/EPOLLHUP come here too)
    if (!FlushTcp(c)) {
      CloseTcp(key);
      return;
    }
    WatchTcp(key, c);
  }
  // One read per readiness: a connection flooding requests waits for the next loop turn
  // like everyone else (epoll is level-triggered), so UDP clients are not starved.
  if (!(c.events & EPOLLIN)) return;
  uint8_t buf[kTcpReadChunk];
  const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    CloseTcp(key);
    return;
  }
  c.in.Append(absl::Span<const uint8_t>(buf, static_cast<size_t>(n)));
  // Framed after every read: a fast client never has more than a frame buffered here.
  bool whole = false;
  for (;;) {
    auto frame = c.in.Next();
    if (!frame.ok()) {
      ++tcp_stats_.bad_streams;  // neither STUN nor ChannelData: the stream is lost
      Flush(out);
      CloseTcp(key);
      return;
    }
    if (frame->empty()) break;
    whole = true;
    server_->OnClient(client, *frame, now_ms, out);
  }
  // The slow-frame clock runs from the last whole frame while one is unfinished.
  if (c.in.partial() == 0) c.partial_since_ms = 0;
  else if (whole || c.partial_since_ms == 0) c.partial_since_ms = now_ms;
  Flush(out);  // answers may stop the reading (WatchTcp)
}

void UdpRelay::TickTcp(int64_t now_ms) {
  if (listener_paused_until_ms_ != 0 && now_ms >= listener_paused_until_ms_) {
    listener_paused_until_ms_ = 0;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTcpListenKey;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, tcp_fd_, &ev);
  }
  std::vector<uint64_t> expired;
  for (auto& [key, c] : tcp_) {
    const bool allocated = server_->HasAllocation(turn::Client{turn::Transport::kTcp, c.remote});
    if (allocated) {
      c.deadline_ms = 0;
    } else if (c.deadline_ms == 0) {
      c.deadline_ms = now_ms + opts_.tcp_allocate_timeout_ms;  // its allocation ended
    }
    if (c.deadline_ms != 0 && now_ms >= c.deadline_ms) {
      ++tcp_stats_.allocate_timeouts;
      expired.push_back(key);
    } else if (c.partial_since_ms != 0 && now_ms - c.partial_since_ms >= opts_.tcp_frame_timeout_ms) {
      ++tcp_stats_.frame_timeouts;
      expired.push_back(key);
    }
  }
  for (uint64_t key : expired) CloseTcp(key);
}

void UdpRelay::Run(std::stop_token stop) {
  std::vector<turn::Send> out;
  int64_t last_expire = NowMs(), last_tick = last_expire;
  epoll_event events[64];
  while (!stop.stop_requested()) {
    const int n = epoll_wait(epoll_fd_, events, 64, 200);
    const int64_t now = NowMs();
    now_ms_ = now;
    for (int k = 0; k < n; ++k) {
      const uint64_t id = events[k].data.u64;
      if (id == kTcpListenKey) {
        Accept(now);
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
    if (now - last_tick >= 100) {
      TickTcp(now);
      last_tick = now;
    }
    if (now - last_expire >= 1000) {
      server_->Expire(now);
      last_expire = now;
    }
    std::lock_guard<std::mutex> l(stats_mu_);
    if (peer_relays_) {
      server_->SetRelayIps(*std::move(peer_relays_));
      peer_relays_.reset();
    }
    if (secrets_) {
      server_->SetSecrets(*std::move(secrets_));
      secrets_.reset();
    }
    stats_ = server_->counters();
    allocations_ = server_->allocations();
    local_stat_ = local_;
    tcp_stats_.connections = tcp_.size();
    tcp_stat_ = tcp_stats_;
  }
}

void UdpRelay::SetPeerRelays(std::vector<net::IpAddress> ips) {
  if (std::find(ips.begin(), ips.end(), opts_.relay_ip) == ips.end()) ips.push_back(opts_.relay_ip);
  std::lock_guard<std::mutex> l(stats_mu_);
  peer_relays_ = std::move(ips);
}

void UdpRelay::SetSecrets(std::vector<std::string> secrets) {
  std::lock_guard<std::mutex> l(stats_mu_);
  secrets_ = std::move(secrets);
}

TcpCounters UdpRelay::tcp_counters() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  return tcp_stat_;
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
