// NatProber stepped by hand against a tiny in-memory NAT: no sockets, no sleeping.
#include "lib/nat/nat_prober.h"

#include <deque>
#include <functional>
#include <map>

#include "gtest/gtest.h"

namespace weft::nat {
namespace {

using std::chrono::milliseconds;

net::Endpoint E(const char* s) { return *net::Endpoint::Parse(s); }

// A NAT in front of port 51820: `mapper(destination)` gives the public endpoint.
struct FakeNet {
  std::function<std::optional<net::Endpoint>(const net::Endpoint&)> mapper;
  struct Datagram {
    std::vector<uint8_t> bytes;
    net::Endpoint from;
  };
  std::deque<Datagram> inbox;  // answers waiting to be delivered

  void Send(absl::Span<const uint8_t> pkt, const net::Endpoint& to) {
    auto req = stun::Message::Parse(pkt);
    ASSERT_TRUE(req.ok());
    auto mapped = mapper(to);
    if (!mapped) return;  // dropped (UDP blocked)
    inbox.push_back({stun::Builder(stun::kBinding, stun::Class::kSuccess, req->tx_id())
                         .AddXorAddress(stun::kXorMappedAddress, *mapped)
                         .Finish(),
                     to});
  }
};

const std::vector<net::Endpoint> kTargets = {E("192.0.2.10:3478"), E("198.51.100.10:3478"), E("203.0.113.10:3479")};

struct Harness {
  FakeNet net;
  uint8_t next_tx = 0;
  NatProber prober;
  explicit Harness(std::function<std::optional<net::Endpoint>(const net::Endpoint&)> mapper)
      : net{std::move(mapper)},
        prober({.targets = kTargets, .local_port = 51820, .local_ips = {*net::IpAddress::Parse("10.1.0.2")}},
               [this](absl::Span<const uint8_t> p, const net::Endpoint& to) { net.Send(p, to); },
               [this] {
                 stun::TxId t{};
                 t.fill(++next_tx);
                 return t;
               }) {}
  // Runs the prober to completion, delivering answers 10 ms after they are sent.
  Verdict Run(Clock::time_point t0) {
    prober.Start(t0);
    Clock::time_point now = t0;
    for (int i = 0; i < 1000 && !prober.done(); ++i) {
      now += milliseconds(10);
      while (!net.inbox.empty()) {
        auto d = net.inbox.front();
        net.inbox.pop_front();
        prober.OnPacket(d.bytes, d.from, now);
      }
      if (now >= prober.NextTimer()) prober.OnTimer(now);
    }
    return prober.verdict();
  }
};

TEST(NatProberTest, EasyNat) {
  Harness h([](const net::Endpoint&) { return E("203.0.113.77:51820"); });
  Verdict v = h.Run(Clock::time_point{});
  EXPECT_EQ(v.mapping, Mapping::kEndpointIndependent) << v.reason;
  EXPECT_TRUE(v.port_preserved);
  EXPECT_EQ(h.prober.counters().sent, 3u);
  EXPECT_TRUE(h.prober.observations().probes[0].rtt.has_value());
}

TEST(NatProberTest, HardNat) {
  std::map<net::Endpoint, uint16_t> ports;
  Harness h([&](const net::Endpoint& to) {
    if (!ports.count(to)) ports[to] = static_cast<uint16_t>(30000 + 7919 * ports.size());
    return net::Endpoint{*net::IpAddress::Parse("203.0.113.77"), ports[to]};
  });
  Verdict v = h.Run(Clock::time_point{});
  EXPECT_EQ(v.mapping, Mapping::kEndpointDependent) << v.reason;
}

TEST(NatProberTest, UdpBlockedIsReportedWithinTheDeadline) {
  Harness h([](const net::Endpoint&) { return std::nullopt; });
  const Clock::time_point t0{};
  Verdict v = h.Run(t0);
  EXPECT_TRUE(v.udp_blocked) << v.reason;
  EXPECT_TRUE(h.prober.done());
  EXPECT_LE(h.prober.NextTimer() - t0, milliseconds(3000));
  EXPECT_EQ(h.prober.counters().sent, 3u * 4) << "first send and three resends per target";
}

TEST(NatProberTest, SpoofedAndMalformedAnswersAreDroppedAndCounted) {
  Harness h([](const net::Endpoint&) { return std::nullopt; });
  const Clock::time_point t0{};
  h.prober.Start(t0);
  // An answer with a transaction ID we never sent.
  stun::TxId forged{};
  forged.fill(0xEE);
  auto spoof = stun::Builder(stun::kBinding, stun::Class::kSuccess, forged)
                   .AddXorAddress(stun::kXorMappedAddress, E("198.18.0.1:1"))
                   .Finish();
  EXPECT_FALSE(h.prober.OnPacket(spoof, kTargets[0], t0));
  // Our transaction ID, but from somebody else than the target.
  stun::TxId ours{};
  ours.fill(1);
  auto wrong_src = stun::Builder(stun::kBinding, stun::Class::kSuccess, ours)
                       .AddXorAddress(stun::kXorMappedAddress, E("198.18.0.1:1"))
                       .Finish();
  EXPECT_FALSE(h.prober.OnPacket(wrong_src, E("192.0.2.99:3478"), t0));
  // Bad FINGERPRINT, and truncated.
  auto bad_fp = stun::Builder(stun::kBinding, stun::Class::kSuccess, ours)
                    .AddXorAddress(stun::kXorMappedAddress, E("198.18.0.1:1"))
                    .Finish();
  bad_fp.back() ^= 1;
  EXPECT_FALSE(h.prober.OnPacket(bad_fp, kTargets[0], t0));
  auto truncated = std::vector<uint8_t>(wrong_src.begin(), wrong_src.end() - 6);
  EXPECT_FALSE(h.prober.OnPacket(truncated, kTargets[0], t0));

  const auto& c = h.prober.counters();
  EXPECT_EQ(c.unknown_tx, 1u);
  EXPECT_EQ(c.wrong_source, 1u);
  EXPECT_EQ(c.malformed, 2u);
  EXPECT_FALSE(h.prober.observations().probes[0].mapped.has_value()) << "nothing was believed";
}

}  // namespace
}  // namespace weft::nat
