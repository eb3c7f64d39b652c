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
constexpr uint16_t kFirstChannel = 0x4000;

stun::TxId RandomTx() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  stun::TxId t;
  for (auto& b : t) b = static_cast<uint8_t>(rng());
  return t;
}

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
        const uint8_t* p = rx_batch_.data() + k * kSlot;
        const size_t got = in[k].msg_len;
        if (got < 4 || (p[0] & 0xC0) != 0x40) {
          other.push_back(k);
          continue;
        }
        const uint16_t ch = static_cast<uint16_t>(p[0] << 8 | p[1]);
        const size_t len = size_t{p[2]} << 8 | p[3];
        auto it = peers_.find(ch);
        if (it == peers_.end() || len + 4 > got) {
          ++dropped_;
          continue;
        }
        oiov[m] = {const_cast<uint8_t*>(p) + 4, len};
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

std::vector<uint8_t> RelayClient::Signed(stun::Builder& b) {
  if (!nonce_.empty()) {
    b.AddString(stun::kUsername, opts_.username).AddString(stun::kRealm, realm_).AddString(stun::kNonce, nonce_);
    b.AddIntegrity(key_);
  }
  return b.Finish();
}

absl::Status RelayClient::Allocate() {
  // Unauthenticated first: the 401 brings the realm and the nonce; then signed.
  for (int attempt = 0; attempt < 8; ++attempt) {
    stun::Builder b(stun::kAllocate, stun::Class::kRequest, RandomTx());
    b.AddU32(stun::kRequestedTransport, 17u << 24).AddU32(stun::kLifetime, lifetime_s_);
    std::vector<uint8_t> req = Signed(b);
    SendFrame(req);
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 400) <= 0) continue;
    std::vector<uint8_t> answer;
    if (!ReadFrames([&](absl::Span<const uint8_t> f) { answer.assign(f.begin(), f.end()); })) {
      return absl::UnavailableError("the relay refused the connection");
    }
    if (answer.empty()) continue;
    auto m = stun::Message::Parse(absl::Span<const uint8_t>(answer));
    if (!m.ok() || m->method() != stun::kAllocate) continue;
    if (m->message_class() == stun::Class::kSuccess) {
      auto r = m->GetXorAddress(stun::kXorRelayedAddress);
      if (!r.ok()) return absl::DataLossError("Allocate success without XOR-RELAYED-ADDRESS");
      relayed_ = *r;
      if (auto l = m->GetU32(stun::kLifetime); l.ok()) lifetime_s_ = *l;
      allocated_ms_ = sys::SteadyMs();
      last_rx_ms_ = allocated_ms_;
      return absl::OkStatus();
    }
    auto e = m->GetErrorCode();
    if (e.ok() && (e->code == 401 || e->code == 438)) {
      if (auto realm = m->GetString(stun::kRealm); realm.ok()) realm_ = *realm;
      if (auto nonce = m->GetString(stun::kNonce); nonce.ok()) nonce_ = *nonce;
      key_ = stun::LongTermKey(opts_.username, realm_, opts_.password);
      if (e->code == 401 && attempt >= 2) return absl::PermissionDeniedError("the relay refused our credentials");
      continue;
    }
    if (e.ok()) return absl::UnavailableError(absl::StrCat("Allocate: ", e->code, " ", e->reason));
  }
  return absl::DeadlineExceededError(absl::StrCat("no answer from the relay ", opts_.server.ToString()));
}

absl::StatusOr<std::unique_ptr<RelayClient>> RelayClient::Start(Options opts) {
  std::unique_ptr<RelayClient> c(new RelayClient(std::move(opts)));
  c->wg_addr_ = net::ToSockaddrV4(net::LoopbackV4(c->opts_.wg_port));
  c->lifetime_s_ = c->opts_.lifetime_s;
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
  if (fd_ >= 0 && !nonce_.empty()) {  // release the allocation
    stun::Builder b(stun::kRefresh, stun::Class::kRequest, RandomTx());
    b.AddU32(stun::kLifetime, 0);
    std::vector<uint8_t> req = Signed(b);
    SendFrame(req);
  }
  for (auto& [ch, p] : peers_) close(p.proxy_fd);
  if (fd_ >= 0) close(fd_);
  if (ep_ >= 0) close(ep_);
}

absl::StatusOr<net::Endpoint> RelayClient::ProxyFor(const net::Endpoint& peer_relayed) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto it = by_relayed_.find(peer_relayed); it != by_relayed_.end()) {
    return net::LoopbackV4(peers_.at(it->second).proxy_port);
  }
  if (peers_.size() >= 0x3FFF) return absl::ResourceExhaustedError("no channel left");
  Peer p;
  p.relayed = peer_relayed;
  p.channel = static_cast<uint16_t>(kFirstChannel + peers_.size());
  p.proxy_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a = net::ToSockaddrV4(net::LoopbackV4(0));
  if (p.proxy_fd < 0 || bind(p.proxy_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (p.proxy_fd >= 0) close(p.proxy_fd);
    return absl::ErrnoToStatus(errno, "proxy socket");
  }
  socklen_t len = sizeof(a);
  getsockname(p.proxy_fd, reinterpret_cast<sockaddr*>(&a), &len);
  p.proxy_port = ntohs(a.sin_port);
  by_relayed_[peer_relayed] = p.channel;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = uint64_t{p.channel} << 32 | static_cast<uint32_t>(p.proxy_fd);
  epoll_ctl(ep_, EPOLL_CTL_ADD, p.proxy_fd, &ev);
  const uint16_t port = p.proxy_port;
  peers_[p.channel] = p;
  return net::LoopbackV4(port);
}

bool RelayClient::alive() const { return !refused_ && sys::SteadyMs() - last_rx_ms_ < 3000; }

RelayClient::Stats RelayClient::stats() const { return {to_relay_.load(), from_relay_.load(), dropped_.load()}; }

void RelayClient::Maintain(int64_t now_ms) {
  std::vector<std::vector<uint8_t>> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Channels (and with them the permissions) bound and kept: a channel lasts 10
    // minutes, a permission 5; re-bind every 4, and every second until bound.
    for (auto& [ch, p] : peers_) {
      if (p.bound && now_ms - p.refreshed_ms < 240000) continue;
      if (!p.bound && now_ms - p.refreshed_ms < 1000) continue;
      p.refreshed_ms = now_ms;
      const stun::TxId tx = RandomTx();
      stun::Builder b(stun::kChannelBind, stun::Class::kRequest, tx);
      b.AddU32(stun::kChannelNumber, uint32_t{ch} << 16).AddXorAddress(stun::kXorPeerAddress, p.relayed);
      out.push_back(Signed(b));
      pending_[tx] = ch;
    }
  }
  if (now_ms - last_probe_ms_ >= 1000) {  // liveness: a Binding request a second
    last_probe_ms_ = now_ms;
    out.push_back(stun::BuildBindingRequest(RandomTx()));
  }
  // Refresh at half the lifetime, and again a second later until it succeeds: a refresh
  // refused for a stale nonce (438; nonces last 10 minutes on weft-relay and coturn) must
  // not wait for the next half-lifetime, or the allocation expires first.
  const bool due = refresh_pending_ ? now_ms - refresh_sent_ms_ >= 1000
                                    : now_ms - allocated_ms_ > int64_t{lifetime_s_} * 500;
  if (due) {
    refresh_tx_ = RandomTx();
    refresh_pending_ = true;
    refresh_sent_ms_ = now_ms;
    stun::Builder b(stun::kRefresh, stun::Class::kRequest, refresh_tx_);
    b.AddU32(stun::kLifetime, lifetime_s_);
    out.push_back(Signed(b));
  }
  for (const auto& m : out) SendFrame(m);
}

void RelayClient::OnRelayPacket(absl::Span<const uint8_t> pkt) {
  const sockaddr_in& wg = wg_addr_;
  if (pkt.size() >= 4 && (pkt[0] & 0xC0) == 0x40) {  // ChannelData: to WireGuard
    const uint16_t ch = static_cast<uint16_t>(pkt[0] << 8 | pkt[1]);
    const size_t len = size_t{pkt[2]} << 8 | pkt[3];
    std::lock_guard<std::mutex> l(mu_);
    auto it = peers_.find(ch);
    if (it == peers_.end() || len + 4 > pkt.size()) {
      ++dropped_;
      return;
    }
    sendto(it->second.proxy_fd, pkt.data() + 4, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&wg), sizeof(wg));
    ++from_relay_;
    return;
  }
  auto m = stun::Message::Parse(pkt);
  if (!m.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    ++dropped_;
    return;
  }
  if (m->message_class() == stun::Class::kIndication && m->method() == stun::kData) {  // before the channel
    auto peer = m->GetXorAddress(stun::kXorPeerAddress);
    auto data = m->Find(stun::kDataAttr);
    std::lock_guard<std::mutex> l(mu_);
    auto ch = peer.ok() ? by_relayed_.find(*peer) : by_relayed_.end();
    if (ch == by_relayed_.end() || !data) {
      ++dropped_;
      return;
    }
    sendto(peers_.at(ch->second).proxy_fd, data->value.data(), data->value.size(), MSG_DONTWAIT,
           reinterpret_cast<const sockaddr*>(&wg), sizeof(wg));
    ++from_relay_;
    return;
  }
  auto e = m->GetErrorCode();
  if (e.ok() && e->code == 438) {  // stale nonce: the next round re-signs
    if (auto nonce = m->GetString(stun::kNonce); nonce.ok()) nonce_ = *nonce;
  }
  if (refresh_pending_ && m->tx_id() == refresh_tx_) {
    if (m->message_class() == stun::Class::kSuccess) {
      refresh_pending_ = false;
      allocated_ms_ = sys::SteadyMs();
      if (auto l = m->GetU32(stun::kLifetime); l.ok() && *l > 0) lifetime_s_ = *l;
    } else if (e.ok() && e->code == 438) {
      refresh_sent_ms_ = 0;  // re-signed with the new nonce at the next step
    } else if (e.ok()) {
      refused_ = true;  // 437: the allocation is gone; 401: the credentials expired
    }
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  auto p = pending_.find(m->tx_id());
  if (p == pending_.end()) return;
  if (m->method() == stun::kChannelBind && m->message_class() == stun::Class::kSuccess) {
    if (auto it = peers_.find(p->second); it != peers_.end()) it->second.bound = true;
  } else if (auto it = peers_.find(p->second); it != peers_.end()) {
    it->second.refreshed_ms = 0;  // retry at once
  }
  pending_.erase(p);
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
      f[0] = static_cast<uint8_t>(channel >> 8);
      f[1] = static_cast<uint8_t>(channel);
      f[2] = static_cast<uint8_t>(len >> 8);
      f[3] = static_cast<uint8_t>(len);
      if (opts_.tcp) {
        SendFrame(absl::Span<const uint8_t>(f, len + 4));
        continue;
      }
      oiov[k] = {f, len + 4};
      out[k] = {};
      out[k].msg_hdr.msg_iov = &oiov[k];
      out[k].msg_hdr.msg_iovlen = 1;
    }
    if (!opts_.tcp) sendmmsg(fd_, out, n, MSG_DONTWAIT);
    to_relay_ += n;
    if (n < kBatch) break;
  }
}

}  // namespace weft::agent
