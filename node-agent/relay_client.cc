#include "node-agent/relay_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "lib/net/fragment_band.h"
#include "lib/status/status_macros.h"
#include "lib/sys/steady_ms.h"

namespace weft::agent {
namespace {

// recvmmsg slots: `n` buffers of `slot` bytes at `base`, each read leaving `headroom`
// bytes in front (for a ChannelData header).
void PrepareBatch(mmsghdr* msgs, iovec* iov, int n, uint8_t* base, size_t slot, size_t headroom) {
  for (int k = 0; k < n; ++k) {
    iov[k] = {base + k * slot + headroom, slot - headroom};
    msgs[k] = {};
    msgs[k].msg_hdr.msg_iov = &iov[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
  }
}

constexpr int kRelayTcpMss = 1200;

}  // namespace

void RelayClient::SendFrame(absl::Span<const uint8_t> frame) {
  if (!opts_.tcp) {
    send(fd_, frame.data(), frame.size(), MSG_DONTWAIT);
    return;
  }
  if (tcp_out_.size() + frame.size() + 3 > (4u << 20)) return;
  turn::AppendStreamFrame(frame, tcp_out_);
  FlushTcp();
}

void RelayClient::FlushTcp() {
  while (!tcp_out_.empty()) {
    ssize_t n = send(fd_, tcp_out_.data(), tcp_out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) return;
    tcp_out_.erase(tcp_out_.begin(), tcp_out_.begin() + n);
  }
}

bool RelayClient::ReadDatagrams(const std::function<void(absl::Span<const uint8_t>)>& on_frame) {
  for (int round = 0; round < 8; ++round) {
    mmsghdr in[kBatch];
    iovec iov[kBatch];
    PrepareBatch(in, iov, kBatch, rx_batch_.data(), kSlot, 0);
    const int n = recvmmsg(fd_, in, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == ECONNREFUSED || errno == ECONNRESET) return false;  // ICMP: the relay is gone
      break;
    }
    if (n == 0) break;
    last_rx_ms_ = sys::SteadyMs();
    // ChannelData goes to WireGuard in one sendmmsg per run of the same peer; anything
    // else (STUN answers, Data indications) one by one.
    mmsghdr out[kBatch];
    iovec oiov[kBatch];
    int out_fd[kBatch];
    int m = 0;
    std::vector<int> other;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (int k = 0; k < n; ++k) {
        const absl::Span<const uint8_t> pkt(rx_batch_.data() + k * kSlot, in[k].msg_len);
        if (!turn::IsChannelData(pkt)) {
          other.push_back(k);
          continue;
        }
        const std::optional<turn::ChannelData> cd = turn::ParseChannelData(pkt);
        auto it = cd ? peers_.find(cd->channel) : peers_.end();
        if (it == peers_.end()) {
          ++dropped_;
          continue;
        }
        oiov[m] = {const_cast<uint8_t*>(cd->data.data()), cd->data.size()};
        out[m] = {};
        out[m].msg_hdr.msg_iov = &oiov[m];
        out[m].msg_hdr.msg_iovlen = 1;
        out[m].msg_hdr.msg_name = &wg_addr_;
        out[m].msg_hdr.msg_namelen = sizeof(wg_addr_);
        out_fd[m++] = it->second.proxy_fd;
      }
    }
    for (int a = 0; a < m;) {
      int b = a;
      while (b < m && out_fd[b] == out_fd[a]) ++b;
      sendmmsg(out_fd[a], out + a, b - a, MSG_DONTWAIT);
      a = b;
    }
    from_relay_ += m;
    for (int k : other) on_frame(absl::Span<const uint8_t>(rx_batch_.data() + k * kSlot, in[k].msg_len));
    if (n < kBatch) break;
  }
  return true;
}

bool RelayClient::ReadFrames(const std::function<void(absl::Span<const uint8_t>)>& on_frame) {
  if (!opts_.tcp) return ReadDatagrams(on_frame);
  uint8_t buf[65536];
  for (int k = 0; k < 64; ++k) {
    ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 && opts_.tcp) return false;
    if (n < 0) {
      if (errno == ECONNREFUSED || errno == ECONNRESET) return false;  // ICMP, or the stream reset
      break;
    }
    // Framed after every read: at most a frame and a read are buffered.
    tcp_in_.Append(absl::Span<const uint8_t>(buf, static_cast<size_t>(n)));
    for (;;) {
      auto frame = tcp_in_.Next();
      if (!frame.ok()) return false;  // neither STUN nor ChannelData: the stream is lost
      if (frame->empty()) break;
      on_frame(*frame);
    }
  }
  return true;
}

uint64_t RelayClient::RandomSeed() {
  std::random_device rd;
  return uint64_t{rd()} << 32 | rd();
}

void RelayClient::OnStun(absl::Span<const uint8_t> frame) {
  auto m = stun::Message::Parse(frame);
  std::lock_guard<std::mutex> l(mu_);
  if (!m.ok()) {
    ++dropped_;
    return;
  }
  turn_.OnMessage(*m, sys::SteadyMs());
  if (turn_.state() == turn::TurnClient::State::kFailed) refused_ = true;
}

absl::Status RelayClient::Allocate() {
  // The protocol is lib/turn's TurnClient (the 401 brings realm and nonce, then signed;
  // a try each 400 ms, 8 tries); here only the waiting and the reading.
  const int64_t give_up = sys::SteadyMs() + turn::TurnClient::kAllocateTries * turn::TurnClient::kAllocateRetryMs + 500;
  while (sys::SteadyMs() < give_up) {
    std::vector<std::vector<uint8_t>> due;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (turn_.state() != turn::TurnClient::State::kAllocating) break;
      due = turn_.Due(sys::SteadyMs());
    }
    for (const auto& r : due) SendFrame(r);
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (!ReadFrames([this](absl::Span<const uint8_t> f) { OnStun(f); })) {
      return absl::UnavailableError("the relay refused the connection");
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  switch (turn_.state()) {
    case turn::TurnClient::State::kAllocated:
      relayed_ = turn_.relayed();
      last_rx_ms_ = sys::SteadyMs();
      return absl::OkStatus();
    case turn::TurnClient::State::kFailed:
      return turn_.failure();
    case turn::TurnClient::State::kAllocating:
      break;
  }
  return absl::DeadlineExceededError(absl::StrCat("no answer from the relay ", opts_.server.ToString()));
}

absl::StatusOr<std::unique_ptr<RelayClient>> RelayClient::Start(Options opts) {
  std::unique_ptr<RelayClient> c(new RelayClient(std::move(opts)));
  c->wg_addr_ = net::ToSockaddrV4(net::LoopbackV4(c->opts_.wg_port));
  c->fd_ = socket(AF_INET, (c->opts_.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return absl::ErrnoToStatus(errno, "socket");
  if (c->opts_.tcp) {
    timeval tv{3, 0};  // bounded connect
    setsockopt(c->fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Segments that fit any uplink down to 1280 bytes (IPv4, timestamps included): a link
    // that drops ICMP "fragmentation needed" would otherwise stall the whole stream, and
    // every relayed peer with it, on its first full-size segment.
    int mss = kRelayTcpMss;
    setsockopt(c->fd_, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
  }
  sockaddr_in to = net::ToSockaddrV4(c->opts_.server);
  if (connect(c->fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, "connect to the relay");
    close(c->fd_);
    c->fd_ = -1;
    return s;
  }
  if (absl::Status s = c->Allocate(); !s.ok()) return s;
  // One epoll set for the relay socket and every peer's proxy socket (ProxyFor adds
  // them from other threads; epoll_ctl is safe there).
  c->ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (c->ep_ < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kRelayKey;
  epoll_ctl(c->ep_, EPOLL_CTL_ADD, c->fd_, &ev);
  c->thread_ = std::jthread([p = c.get()](std::stop_token st) { p->Loop(st); });
  return c;
}

RelayClient::~RelayClient() {
  thread_ = {};
  if (fd_ >= 0) {  // release the allocation
    std::vector<uint8_t> release;
    {
      std::lock_guard<std::mutex> l(mu_);
      release = turn_.Release();
    }
    if (!release.empty()) SendFrame(release);
  }
  for (auto& [ch, p] : peers_) close(p.proxy_fd);
  if (fd_ >= 0) close(fd_);
  if (ep_ >= 0) close(ep_);
}

absl::StatusOr<net::Endpoint> RelayClient::ProxyFor(const net::Endpoint& peer_relayed) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(const uint16_t ch, turn_.Channel(peer_relayed));  // bound in the background
  if (auto it = peers_.find(ch); it != peers_.end()) return net::LoopbackV4(it->second.proxy_port);
  Peer p;
  p.relayed = peer_relayed;
  p.channel = ch;
  p.proxy_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a = net::ToSockaddrV4(net::LoopbackV4(0));
  if (p.proxy_fd < 0 || bind(p.proxy_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, "proxy socket");
    if (p.proxy_fd >= 0) close(p.proxy_fd);
    return s;
  }
  socklen_t len = sizeof(a);
  getsockname(p.proxy_fd, reinterpret_cast<sockaddr*>(&a), &len);
  p.proxy_port = ntohs(a.sin_port);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = uint64_t{p.channel} << 32 | static_cast<uint32_t>(p.proxy_fd);
  epoll_ctl(ep_, EPOLL_CTL_ADD, p.proxy_fd, &ev);
  const uint16_t port = p.proxy_port;
  peers_[ch] = p;
  return net::LoopbackV4(port);
}

bool RelayClient::alive() const { return !refused_ && sys::SteadyMs() - last_rx_ms_ < 3000; }

RelayClient::Stats RelayClient::stats() const { return {to_relay_.load(), from_relay_.load(), dropped_.load()}; }

void RelayClient::Maintain(int64_t now_ms) {
  std::vector<std::vector<uint8_t>> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    due = turn_.Due(now_ms);  // refreshes, channel binds, the liveness Binding
    if (turn_.state() == turn::TurnClient::State::kFailed) refused_ = true;
  }
  for (const auto& r : due) SendFrame(r);
}

void RelayClient::OnRelayPacket(absl::Span<const uint8_t> pkt) {
  const sockaddr_in& wg = wg_addr_;
  if (turn::IsChannelData(pkt)) {  // to WireGuard
    const std::optional<turn::ChannelData> cd = turn::ParseChannelData(pkt);
    std::lock_guard<std::mutex> l(mu_);
    auto it = cd ? peers_.find(cd->channel) : peers_.end();
    if (it == peers_.end()) {
      ++dropped_;
      return;
    }
    sendto(it->second.proxy_fd, cd->data.data(), cd->data.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&wg),
           sizeof(wg));
    ++from_relay_;
    return;
  }
  auto m = stun::Message::Parse(pkt);
  if (m.ok() && m->message_class() == stun::Class::kIndication && m->method() == stun::kData) {  // before the channel
    auto peer = m->GetXorAddress(stun::kXorPeerAddress);
    auto data = m->Find(stun::kDataAttr);
    std::lock_guard<std::mutex> l(mu_);
    auto ch = peer.ok() ? turn_.ChannelOf(*peer) : std::nullopt;
    auto it = ch ? peers_.find(*ch) : peers_.end();
    if (it == peers_.end() || !data) {
      ++dropped_;
      return;
    }
    sendto(it->second.proxy_fd, data->value.data(), data->value.size(), MSG_DONTWAIT,
           reinterpret_cast<const sockaddr*>(&wg), sizeof(wg));
    ++from_relay_;
    return;
  }
  OnStun(pkt);
}

void RelayClient::Loop(std::stop_token stop) {
  epoll_event events[64];
  bool want_out = false;  // TCP: EPOLLOUT only while bytes wait to go
  while (!stop.stop_requested()) {
    if (const int64_t now = sys::SteadyMs(); now - last_maintain_ms_ >= 100) {  // not per packet
      last_maintain_ms_ = now;
      Maintain(now);
    }
    if (opts_.tcp && want_out == tcp_out_.empty()) {
      want_out = !tcp_out_.empty();
      epoll_event ev{};
      ev.events = EPOLLIN | (want_out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
      ev.data.u64 = kRelayKey;
      epoll_ctl(ep_, EPOLL_CTL_MOD, fd_, &ev);
    }
    const int ready = epoll_wait(ep_, events, 64, 100);
    for (int e = 0; e < ready; ++e) {
      if (events[e].data.u64 == kRelayKey) {
        if (events[e].events & EPOLLOUT) FlushTcp();
        if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          bool any = false;
          if (!ReadFrames([&](absl::Span<const uint8_t> f) {
                any = true;
                OnRelayPacket(f);
              })) {
            refused_ = true;  // the relay is gone: the supervisor moves on
          }
          if (any) last_rx_ms_ = sys::SteadyMs();
        }
        continue;
      }
      ForwardFromWireGuard(static_cast<uint16_t>(events[e].data.u64 >> 32),
                           static_cast<int>(events[e].data.u64 & 0xFFFFFFFFu));
    }
  }
}

void RelayClient::ForwardFromWireGuard(uint16_t channel, int proxy_fd) {
  // From WireGuard: a batch of datagrams in, as ChannelData frames out (each read
  // leaves 4 bytes of headroom for the frame header).
  for (int round = 0; round < 8; ++round) {
    mmsghdr in[kBatch];
    iovec iov[kBatch];
    PrepareBatch(in, iov, kBatch, batch_.data(), kSlot, 4);
    const int n = recvmmsg(proxy_fd, in, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    mmsghdr out[kBatch];
    iovec oiov[kBatch];
    for (int k = 0; k < n; ++k) {
      uint8_t* f = batch_.data() + k * kSlot;
      const size_t len = in[k].msg_len;
      turn::WriteChannelDataHeader(f, channel, len);
      if (opts_.tcp) {
        SendFrame(absl::Span<const uint8_t>(f, len + 4));
        continue;
      }
      oiov[k] = {f, len + 4};
      out[k] = {};
      out[k].msg_hdr.msg_iov = &oiov[k];
      out[k].msg_hdr.msg_iovlen = 1;
    }
    if (!opts_.tcp) (void)net::SendmmsgWithFragmentBand(fd_, out, n, MSG_DONTWAIT);  // lib/net/fragment_band.h
    to_relay_ += n;
    if (n < kBatch) break;
  }
}

}  // namespace weft::agent
