// A minimal TURN client for tests that play a client the relay must refuse: one socket
// (UDP or TCP to the relay, bound where the test says), requests signed after the 401,
// answers read with a deadline. Not the agent's client on purpose: it sends what the
// test asks, including what an honest client never would.
#ifndef WEFT_TESTS_RELAY_TURN_PROBE_H_
#define WEFT_TESTS_RELAY_TURN_PROBE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/stun/stun_message.h"
#include "lib/turn/stream_framer.h"
#include "lib/turn/turn_credentials.h"

namespace weft::testing {

class TurnProbe {
 public:
  // `bind_to` port 0: any port.
  TurnProbe(bool tcp, const net::Endpoint& relay, const net::Endpoint& bind_to, const turn::Credentials& creds)
      : tcp_(tcp), relay_(relay), creds_(creds) {
    fd_ = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a = net::ToSockaddrV4(bind_to);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    sockaddr_in r = net::ToSockaddrV4(relay);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&r), sizeof(r)) == 0;
  }
  ~TurnProbe() { close(fd_); }
  TurnProbe(const TurnProbe&) = delete;
  TurnProbe& operator=(const TurnProbe&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  net::Endpoint local() const {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    return net::FromSockaddrV4(a);
  }

  void SendFrame(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> out;
    turn::AppendStreamFrame(frame, out);
    send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
  }
  // The next frame within `ms`; empty on timeout or a closed stream.
  std::vector<uint8_t> Receive(int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      if (tcp_) {
        auto f = framer_.Next();
        if (!f.ok()) return {};
        if (!f->empty()) return std::vector<uint8_t>(f->begin(), f->end());
      }
      const int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count());
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) return {};
      uint8_t buf[65536];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = n == 0 || !tcp_;
        return {};
      }
      if (!tcp_) return std::vector<uint8_t>(buf, buf + n);
      framer_.Append(absl::Span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
  }
  bool closed() const { return closed_; }

  // A signed request; the answer's code (200 for success), -1 for none. `answer` is valid
  // until the next request.
  int Request(uint16_t method, const std::function<void(stun::Builder&)>& attrs,
              std::optional<stun::Message>* answer = nullptr) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      stun::TxId tx{};
      tx[0] = static_cast<uint8_t>(++seq_);
      tx[1] = static_cast<uint8_t>(seq_ >> 8);
      stun::Builder b(method, stun::Class::kRequest, tx);
      attrs(b);
      if (!nonce_.empty()) {
        b.AddString(stun::kUsername, creds_.username).AddString(stun::kRealm, "weft").AddString(stun::kNonce, nonce_);
        b.AddIntegrity(stun::LongTermKey(creds_.username, "weft", creds_.password));
      }
      SendFrame(b.Finish());
      for (int i = 0; i < 8; ++i) {  // skip data that arrives in between
        auto got = Receive(1000);
        if (got.empty()) return -1;
        auto m = stun::Message::Parse(got);
        if (!m.ok() || m->tx_id() != tx) continue;
        if (m->message_class() == stun::Class::kSuccess) {
          Keep(got, answer);
          return 200;
        }
        auto e = m->GetErrorCode();
        if (e.ok() && ((e->code == 401 && nonce_.empty()) || e->code == 438)) {  // challenged: sign
          if (auto n = m->GetString(stun::kNonce); n.ok()) nonce_ = *n;
          break;  // sign and send again
        }
        Keep(got, answer);
        return e.ok() ? e->code : -2;
      }
    }
    return -1;
  }
  // Allocate; the relayed address.
  std::optional<net::Endpoint> Allocate() {
    std::optional<stun::Message> m;
    if (Request(stun::kAllocate, [](stun::Builder& b) { b.AddU32(stun::kRequestedTransport, 17u << 24); }, &m) != 200) {
      return std::nullopt;
    }
    auto r = m->GetXorAddress(stun::kXorRelayedAddress);
    return r.ok() ? std::optional<net::Endpoint>(*r) : std::nullopt;
  }
  int Permit(const net::Endpoint& peer) {
    return Request(stun::kCreatePermission, [&](stun::Builder& b) { b.AddXorAddress(stun::kXorPeerAddress, peer); });
  }
  int BindChannel(uint16_t ch, const net::Endpoint& peer) {
    return Request(stun::kChannelBind, [&](stun::Builder& b) {
      b.AddU32(stun::kChannelNumber, uint32_t{ch} << 16).AddXorAddress(stun::kXorPeerAddress, peer);
    });
  }
  void SendIndication(const net::Endpoint& peer, const std::vector<uint8_t>& data) {
    stun::TxId tx{};
    stun::Builder b(stun::kSend, stun::Class::kIndication, tx);
    b.AddXorAddress(stun::kXorPeerAddress, peer).AddRaw(stun::kDataAttr, data);
    SendFrame(b.Finish(false));
  }
  void SendChannelData(uint16_t ch, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> f = {static_cast<uint8_t>(ch >> 8), static_cast<uint8_t>(ch),
                              static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size())};
    f.insert(f.end(), data.begin(), data.end());
    SendFrame(f);
  }

 private:
  // A Message views its bytes: the answer's are kept here, as long as the probe lives
  // (until the next request).
  void Keep(const std::vector<uint8_t>& bytes, std::optional<stun::Message>* answer) {
    if (answer == nullptr) return;
    answer_bytes_ = bytes;
    auto m = stun::Message::Parse(answer_bytes_);
    if (m.ok()) *answer = *m;
  }

  bool tcp_;
  std::vector<uint8_t> answer_bytes_;
  net::Endpoint relay_;
  turn::Credentials creds_;
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string nonce_;
  int seq_ = 0;
  turn::StreamFramer framer_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_RELAY_TURN_PROBE_H_
