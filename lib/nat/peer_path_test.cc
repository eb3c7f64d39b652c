#include "lib/nat/peer_path.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace weft::nat {
namespace {

net::Endpoint Ep(const char* ip, uint16_t port) { return {*net::IpAddress::Parse(ip), port}; }

const net::Endpoint kPeerPublic = Ep("203.0.113.7", 51820);
const net::Endpoint kProxy = Ep("127.0.0.1", 40001);

PairDecision Direct(bool initiate = true) {
  PairDecision d{.direct = true, .reason = "direct: both easy"};
  if (initiate) d.send_to = kPeerPublic;
  d.punch = {kPeerPublic};
  return d;
}
PairDecision Relayed() { return {.direct = false, .reason = "relayed: both hard"}; }

// Steps a PeerPath through WireGuard samples every 250 ms, as the agent does.
struct Driver {
  PeerPath p;
  int64_t now = 0;
  uint64_t rx = 0, tx = 0;
  int64_t handshake = 0;
  Path seen = Path::kDirect;
  int probes = 0, punches = 0, set_endpoints = 0;
  std::vector<std::string> states;  // every state entered, in order

  explicit Driver(PeerPathOptions o = {}) : p(o) {}
  // Advances `ms` in ticks; `on_tick` may change counters before each sample.
  template <typename F>
  void Run(int64_t ms, F on_tick) {
    for (int64_t t = 0; t < ms; t += 250) {
      now += 250;
      on_tick(now);
      p.Observe({.rx_bytes = rx, .tx_bytes = tx, .last_handshake_ms = handshake, .endpoint_path = seen}, now);
      PeerPath::Actions a = p.Tick(now);
      probes += a.probe;
      punches += static_cast<int>(a.punch.size());
      set_endpoints += a.set_endpoint;
      const std::string s(PeerPath::StateName(p.state()));
      if (states.empty() || states.back() != s) states.push_back(s);
      if (a.reconfigure) seen = p.path() == Path::kNone ? seen : p.path();  // WireGuard follows the config
    }
  }
  void Run(int64_t ms) {
    Run(ms, [](int64_t) {});
  }
  // Decided direct, punched, direct, and the first packet sent to start WireGuard's
  // handshake: where most tests start (counts start over).
  void DirectNow(const PairDecision& dec) {
    p.Decide(dec, now);
    Run(750);
    states.clear();
    probes = punches = set_endpoints = 0;
  }
};

// A new pair decided direct punches for half a second before WireGuard sends anything
// (each side's NAT open before the other's first packet arrives), then goes direct.
TEST(PeerPathTest, DecidedDirectPunchesFirstThenGoesDirect) {
  PeerPath p;
  p.Decide(Direct(), 0);
  PeerPath::Actions a = p.Tick(0);
  EXPECT_TRUE(a.reconfigure);
  EXPECT_EQ(a.punch, std::vector<net::Endpoint>{kPeerPublic});
  EXPECT_EQ(p.path(), Path::kNone) << "nothing sent direct while punching";
  EXPECT_EQ(p.reason(), "opening the NATs before the first packet (direct: both easy)");
  EXPECT_EQ(p.Tick(250).punch.size(), 1u);
  EXPECT_TRUE(p.Tick(500).reconfigure);
  EXPECT_EQ(p.path(), Path::kDirect);
  EXPECT_EQ(p.endpoint(), kPeerPublic);
  EXPECT_EQ(p.reason(), "direct: both easy");
  EXPECT_FALSE(p.Tick(750).reconfigure);  // nothing changed
  p.Decide(Direct(), 1000);                // the same decision again changes nothing
  EXPECT_FALSE(p.Tick(1250).reconfigure);
}

// Both sides send first: the side that yields opens a second longer, so the other's
// first handshake arrives before it sends its own (crossing handshakes cancel out).
TEST(PeerPathTest, TheYieldingSideOpensLonger) {
  PeerPath p;
  PairDecision d = Direct();
  d.yield = true;
  p.Decide(d, 0);
  p.Tick(500);
  EXPECT_EQ(p.state(), PeerPath::State::kOpening);
  p.Tick(1250);
  EXPECT_EQ(p.state(), PeerPath::State::kOpening);
  p.Tick(1500);
  EXPECT_EQ(p.state(), PeerPath::State::kDirect);
}

// Peers on one LAN (no punch to make) go direct at once.
TEST(PeerPathTest, NothingToPunchGoesDirectAtOnce) {
  PeerPath p;
  PairDecision lan{.direct = true, .send_to = Ep("10.1.0.3", 51820), .reason = "direct over the local network"};
  p.Decide(lan, 0);
  EXPECT_EQ(p.path(), Path::kDirect);
  EXPECT_EQ(p.endpoint(), lan.send_to);
}

TEST(PeerPathTest, ThePeerInitiatesNoEndpointIsSet) {
  PeerPath p;
  p.Decide(Direct(/*initiate=*/false), 0);
  p.Tick(0);
  p.Tick(500);
  EXPECT_EQ(p.path(), Path::kDirect);
  EXPECT_EQ(p.endpoint(), std::nullopt);
}

TEST(PeerPathTest, DecidedRelayUsesTheRelayOrHasNoPath) {
  PeerPath p;
  p.Decide(Relayed(), 0);
  EXPECT_EQ(p.path(), Path::kNone);
  EXPECT_EQ(p.reason(), "relayed: both hard (no relay available: no path)");
  p.SetRelay(kProxy, 10);
  EXPECT_TRUE(p.Tick(10).reconfigure);
  EXPECT_EQ(p.path(), Path::kRelay);
  EXPECT_EQ(p.endpoint(), kProxy);
}

// The decay seen outside the lab: an idle pair's keepalives cross (each side sends one
// every 25 s, at unrelated times), so tx moves with no rx for seconds. That is a doubt,
// answered by a probe: the pair stays direct.
TEST(PeerPathTest, IdlePairWithKeepalivesOnlyStaysDirect) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(180000, [&](int64_t now) {
    if (now % 25000 == 0) d.tx += 32;            // our keepalive
    if ((now + 12000) % 25000 == 0) d.rx += 32;  // theirs, 12 s later
    if (d.p.in_doubt() && now % 500 == 0) d.p.ProbeAnswered(now);  // the peer answers probes
  });
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
  EXPECT_GT(d.probes, 0);
  EXPECT_LT(d.probes, 3 * 180 / 25 + 3);  // a few per keepalive, not a flood
}

// Setting an endpoint sends nothing: the tick after the pair went direct, one packet
// through the tunnel starts WireGuard's handshake while both sides' punches hold the way
// open (without it, an idle pair's first handshake waited for traffic or a 5 s retry).
TEST(PeerPathTest, GoingDirectSendsOnePacketToStartTheHandshake) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.p.Decide(Direct(), d.now);
  d.Run(500);
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.probes, 0) << "not before the endpoint is written";
  d.Run(250);
  EXPECT_EQ(d.probes, 1);
  d.Run(60000);
  EXPECT_EQ(d.probes, 1) << "once";
}

TEST(PeerPathTest, IdlePairWithNoTrafficAtAllIsNeverProbed) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(600000);
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.probes, 0);
}

TEST(PeerPathTest, BusyPairWithAnswersIsNeverProbed) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(60000, [&](int64_t) {
    d.tx += 1000;
    d.rx += 1000;
  });
  EXPECT_EQ(d.probes, 0);
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
}

// The direct path dies under traffic: doubt after 1 s, probes for 1 s, then the relay,
// 2-2.5 s after the last answer. Direct is retried later, with backoff.
TEST(PeerPathTest, DeadDirectPathFallsBackThenRetriesWithBackoff) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(2000, [&](int64_t) { d.tx += 100, d.rx += 100; });
  d.Run(4000, [&](int64_t) { d.tx += 100; });  // nothing comes back
  EXPECT_EQ(d.p.state(), PeerPath::State::kFallback);
  EXPECT_EQ(d.p.path(), Path::kRelay);
  EXPECT_EQ(d.p.endpoint(), kProxy);
  EXPECT_EQ(d.p.reason(),
            "the direct path stopped answering: relayed, direct retried with backoff (direct: both easy)");
  EXPECT_GE(d.probes, 4);
  EXPECT_EQ(d.p.retry_backoff_ms(), 10000);
  // On the relay the pair talks (rx after tx). 10 s after the fall-back: punch, then
  // direct again.
  d.Run(8500, [&](int64_t) { d.tx += 100, d.rx += 100; });
  EXPECT_EQ(d.p.state(), PeerPath::State::kUpgrading);
  d.Run(1000, [&](int64_t) { d.tx += 100, d.rx += 100; });
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_GE(d.punches, 3);  // kept open while relayed, then before the move
  // Still dead: back to the relay, and the next retry waits twice as long.
  d.Run(4000, [&](int64_t) { d.tx += 100; });
  EXPECT_EQ(d.p.state(), PeerPath::State::kFallback);
  EXPECT_EQ(d.p.retry_backoff_ms(), 20000);
  EXPECT_EQ(d.states, (std::vector<std::string>{"direct", "fallback", "upgrading", "direct", "fallback"}));
}

TEST(PeerPathTest, BackoffIsCappedAndStartsOverOnceDirectHeld) {
  PeerPathOptions o{.retry_first_ms = 2000, .retry_max_ms = 8000, .stable_ms = 20000};
  Driver d(o);
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  for (int i = 0; i < 5; ++i) {
    d.Run(4000, [&](int64_t) { d.tx += 100; });  // dies
    ASSERT_EQ(d.p.state(), PeerPath::State::kFallback);
    d.Run(8000, [&](int64_t) { d.tx += 100, d.rx += 100; });  // relayed until the retry, then direct
    ASSERT_EQ(d.p.state(), PeerPath::State::kDirect);
  }
  EXPECT_EQ(d.p.retry_backoff_ms(), 8000);
  d.Run(21000, [&](int64_t) { d.tx += 100, d.rx += 100; });  // direct holds
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.p.retry_backoff_ms(), 0);
}

// Answers to probes, or a handshake completed since the doubt, keep the pair direct even
// though data goes one way only (a one-way UDP stream from a pod).
TEST(PeerPathTest, OneWayTrafficWithAnsweredProbesStaysDirect) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(30000, [&](int64_t now) {
    d.tx += 1400;
    if (d.p.in_doubt()) {
      d.rx += 92;  // the probe's answer
      d.p.ProbeAnswered(now);
    }
  });
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
}

TEST(PeerPathTest, AHandshakeSinceTheDoubtIsProofToo) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(30000, [&](int64_t now) {
    d.tx += 1400;
    if (d.p.in_doubt()) d.handshake = now;
  });
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
}

// Without a relay there is nothing to fall back to: no probes, stays direct.
TEST(PeerPathTest, NoRelayNoFallback) {
  Driver d;
  d.DirectNow(Direct());
  d.Run(10000, [&](int64_t) { d.tx += 100; });
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
  EXPECT_EQ(d.probes, 0);
}

// A relayed pair decided direct (its hard NAT became easy) punches for a second first.
TEST(PeerPathTest, RelayedPairDecidedDirectPunchesThenMoves) {
  Driver d;
  d.seen = Path::kRelay;
  d.p.SetRelay(kProxy, 0);
  d.p.Decide(Relayed(), 0);
  d.Run(1000);
  d.p.Decide(Direct(), d.now);
  d.Run(250);
  EXPECT_EQ(d.p.state(), PeerPath::State::kUpgrading);
  EXPECT_EQ(d.p.path(), Path::kRelay);
  d.Run(500);
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.p.endpoint(), kPeerPublic);
  EXPECT_GE(d.punches, 1);
  EXPECT_EQ(d.states, (std::vector<std::string>{"relayed", "upgrading", "direct"}));
}

// The peer fell back (its side found the path dead): its packets come through the relay
// and WireGuard roams there. The side that waits for the peer's packets follows.
TEST(PeerPathTest, ThePeerMovedToTheRelayNonInitiatorFollows) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct(/*initiate=*/false));
  d.Run(1000);
  d.seen = Path::kRelay;  // roamed
  d.Run(3500);
  EXPECT_EQ(d.p.state(), PeerPath::State::kFallback);
  EXPECT_EQ(d.p.reason(), "the peer moved to the relay: relayed, direct retried with backoff (direct: both easy)");
  EXPECT_EQ(d.set_endpoints, 0);
}

// The side that sends first says where again (twice) before following: packets crossing
// during a move must not leave a working direct pair on the relay.
TEST(PeerPathTest, RoamedToTheRelayInitiatorReassertsItsEndpoint) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(1000);
  d.seen = Path::kRelay;
  d.Run(1500, [&](int64_t) {
    if (d.set_endpoints > 0) d.seen = Path::kDirect;  // the peer roamed to us: direct again
  });
  EXPECT_EQ(d.set_endpoints, 1);
  EXPECT_EQ(d.states, std::vector<std::string>{"direct"});
  // A peer that stays on the relay is followed after two tries.
  d.seen = Path::kRelay;
  d.Run(6000);
  EXPECT_EQ(d.set_endpoints, 3);
  EXPECT_EQ(d.p.state(), PeerPath::State::kFallback);
}

// On the relay after a fall-back, the peer's direct packets arrive (it retried first):
// WireGuard roamed to them, and the pair is direct again without waiting for the retry.
TEST(PeerPathTest, FallbackEndsWhenThePeersDirectPacketsArrive) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(1000, [&](int64_t) { d.tx += 100, d.rx += 100; });
  d.Run(4000, [&](int64_t) { d.tx += 100; });
  ASSERT_EQ(d.p.state(), PeerPath::State::kFallback);
  d.Run(1000, [&](int64_t) { d.tx += 100, d.rx += 100; });
  EXPECT_EQ(d.p.state(), PeerPath::State::kFallback);  // WireGuard is on the relay now
  d.seen = Path::kDirect;
  d.Run(250);
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
}

TEST(PeerPathTest, DecidedRelayWhileDirectMovesAtOnce) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(1000);
  d.p.Decide(Relayed(), d.now);
  d.Run(250);
  EXPECT_EQ(d.p.path(), Path::kRelay);
  EXPECT_EQ(d.p.reason(), "relayed: both hard");
}

// The relay goes away while relayed after a fall-back: direct is all there is.
TEST(PeerPathTest, RelayLostDuringFallbackGoesDirect) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(4000, [&](int64_t) { d.tx += 100; });
  ASSERT_EQ(d.p.state(), PeerPath::State::kFallback);
  d.p.SetRelay(std::nullopt, d.now);
  d.Run(250);
  EXPECT_EQ(d.p.path(), Path::kDirect);
}

// A new decision (the peer's NAT changed, say) ends a fall-back at once, through a punch.
TEST(PeerPathTest, ANewDecisionEndsAFallback) {
  Driver d;
  d.p.SetRelay(kProxy, 0);
  d.DirectNow(Direct());
  d.Run(4000, [&](int64_t) { d.tx += 100; });
  ASSERT_EQ(d.p.state(), PeerPath::State::kFallback);
  PairDecision moved = Direct();
  moved.send_to = Ep("203.0.113.9", 40000);
  moved.punch = {*moved.send_to};
  d.p.Decide(moved, d.now);
  d.Run(1250);
  EXPECT_EQ(d.p.state(), PeerPath::State::kDirect);
  EXPECT_EQ(d.p.endpoint(), moved.send_to);
}

}  // namespace
}  // namespace weft::nat
