// The TURN client's protocol, without sockets or root: against weft-relay's own server
// core (TurnServer, in-process) and against hand-made answers for what a server rarely
// does (stale nonces at the wrong moment, a lost allocation, silence).
#include "lib/turn/turn_client.h"

#include <gtest/gtest.h>

#include "lib/turn/turn_credentials.h"
#include "lib/turn/turn_server.h"

namespace weft::turn {
namespace {

net::Endpoint Ep(const std::string& s) { return *net::Endpoint::Parse(s); }

constexpr int64_t kStart = 1800000000000;  // ms
const net::Endpoint kClientAddr = Ep("198.51.100.7:51820");

class Ports : public RelayPorts {
 public:
  absl::StatusOr<net::Endpoint> Open(uint64_t id, bool) override {
    return net::Endpoint{*net::IpAddress::Parse("203.0.113.9"), static_cast<uint16_t>(50000 + id)};
  }
  void Close(uint64_t) override {}
};

// A client and a server wired back to back; the clock is the test's.
struct Pair {
  explicit Pair(int64_t nonce_lifetime_s = 600, uint32_t lifetime_s = 600)
      : server(ServerOptions{.secrets = {"s3cret-0123456789"}, .nonce_lifetime_s = nonce_lifetime_s,
                             .peers = {.relay_ips = {*net::IpAddress::Parse("203.0.113.9")}}},
               ports),
        client({.username = creds.username, .password = creds.password, .lifetime_s = lifetime_s, .tx_seed = 42}) {}
  // One step at `now`: the client's due requests to the server, its answers back.
  int Step(int64_t now) {
    int sent = 0;
    for (const auto& req : client.Due(now)) {
      ++sent;
      std::vector<Send> out;
      server.OnClient(kClientAddr, req, now, out);
      for (const auto& s : out) {
        auto m = stun::Message::Parse(s.data);
        if (m.ok()) client.OnMessage(*m, now);
      }
    }
    server.Expire(now);
    return sent;
  }
  Ports ports;
  Credentials creds = IssueCredentials("s3cret-0123456789", "node-a", kStart / 1000 + 86400);
  TurnServer server;
  TurnClient client;
};

TEST(TurnClientTest, AllocatesAfterTheChallengeAndBindsChannels) {
  Pair p;
  p.Step(kStart);  // unsigned: 401 with realm and nonce
  EXPECT_EQ(p.client.state(), TurnClient::State::kAllocating);
  p.Step(kStart + 10);  // signed at once
  ASSERT_EQ(p.client.state(), TurnClient::State::kAllocated) << p.client.failure();
  EXPECT_EQ(p.client.relayed().ToString(), "203.0.113.9:50001");
  EXPECT_EQ(p.server.allocations(), 1u);
  auto ch = p.client.Channel(Ep("203.0.113.9:50002"));
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(*ch, 0x4000);
  EXPECT_EQ(*p.client.Channel(Ep("203.0.113.9:50002")), 0x4000) << "one channel per peer";
  EXPECT_EQ(*p.client.Channel(Ep("203.0.113.9:50003")), 0x4001);
  EXPECT_FALSE(p.client.bound(0x4000));
  p.Step(kStart + 20);
  EXPECT_TRUE(p.client.bound(0x4000));
  EXPECT_TRUE(p.client.bound(0x4001));
  EXPECT_EQ(p.client.ChannelOf(Ep("203.0.113.9:50003")), 0x4001);
  EXPECT_EQ(p.client.PeerOf(0x4001), Ep("203.0.113.9:50003"));
}

TEST(TurnClientTest, QuietBetweenDeadlines) {
  Pair p;
  p.Step(kStart);
  p.Step(kStart);
  ASSERT_EQ(p.client.state(), TurnClient::State::kAllocated);
  ASSERT_TRUE(p.client.Channel(Ep("203.0.113.9:50002")).ok());
  p.Step(kStart + 1);
  // Within the next second: nothing (binding probes are once a second).
  EXPECT_TRUE(p.client.Due(kStart + 500).empty());
  auto due = p.client.Due(kStart + 1001);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(stun::Message::Parse(due[0])->method(), stun::kBinding) << "the liveness probe";
}

// (events, time) -> (allocation alive, requests): 3 s allocations, 1 s nonces, a
// minute of steps every 100 ms. Every refresh meets a stale nonce first (438) and is
// signed again at once, so the allocation never lapses.
TEST(TurnClientTest, StaleNoncesNeverLetTheAllocationLapse) {
  Pair p(/*nonce_lifetime_s=*/1, /*lifetime_s=*/3);
  for (int64_t t = 0; t <= 60000; t += 100) {
    p.Step(kStart + t);
    if (t > 0) {
      ASSERT_EQ(p.server.allocations(), 1u) << "at " << t << " ms";
    }
  }
  EXPECT_EQ(p.client.state(), TurnClient::State::kAllocated) << p.client.failure();
  EXPECT_GT(p.server.counters().unauthenticated, 10u) << "the 438s happened";
}

TEST(TurnClientTest, ChannelsAreKeptBoundForHoursWithStaleNonces) {
  Pair p(/*nonce_lifetime_s=*/600);
  p.Step(kStart);
  p.Step(kStart);
  ASSERT_TRUE(p.client.Channel(Ep("203.0.113.9:50002")).ok());
  const net::Endpoint peer = Ep("203.0.113.9:50002");
  for (int64_t t = 0; t <= 3 * 3600 * 1000; t += 1000) {
    p.Step(kStart + t);
    std::vector<Send> out;
    p.server.OnPeer(1, peer, std::vector<uint8_t>{1}, kStart + t, out);  // the permission holds
    ASSERT_EQ(out.size(), 1u) << "at " << t / 1000 << " s";
  }
  EXPECT_TRUE(p.client.bound(0x4000));
}

TEST(TurnClientTest, WrongCredentialsFailClearly) {
  Pair p;
  TurnClient wrong({.username = p.creds.username, .password = "guess", .tx_seed = 1});
  for (int64_t t = 0; t < 4000 && wrong.state() == TurnClient::State::kAllocating; t += 100) {
    for (const auto& req : wrong.Due(kStart + t)) {
      std::vector<Send> out;
      p.server.OnClient(kClientAddr, req, kStart + t, out);
      for (const auto& s : out) wrong.OnMessage(*stun::Message::Parse(s.data), kStart + t);
    }
  }
  EXPECT_EQ(wrong.state(), TurnClient::State::kFailed);
  EXPECT_TRUE(absl::IsPermissionDenied(wrong.failure())) << wrong.failure();
}

TEST(TurnClientTest, SilenceIsADeadlineAfterEightTries) {
  TurnClient c({.username = "1:n", .password = "p", .tx_seed = 7});
  int sent = 0;
  for (int64_t t = 0; t <= 4000; t += 100) sent += static_cast<int>(c.Due(kStart + t).size());
  EXPECT_EQ(sent, TurnClient::kAllocateTries);
  EXPECT_EQ(c.state(), TurnClient::State::kFailed);
  EXPECT_TRUE(absl::IsDeadlineExceeded(c.failure()));
}

TEST(TurnClientTest, ALostAllocationFailsTheClient) {
  Pair p(600, 600);
  p.Step(kStart);
  p.Step(kStart);
  ASSERT_EQ(p.client.state(), TurnClient::State::kAllocated);
  // The relay restarted: the next Refresh is answered 437.
  Pair restarted(600, 600);
  int64_t t = kStart + 300 * 1000;
  for (const auto& req : p.client.Due(t)) {
    std::vector<Send> out;
    restarted.server.OnClient(kClientAddr, req, t, out);
    for (const auto& s : out) p.client.OnMessage(*stun::Message::Parse(s.data), t);
  }
  // Signed with a nonce it takes (the same nonce key here): 437, the allocation is gone.
  for (const auto& req : p.client.Due(t + 100)) {
    std::vector<Send> out;
    restarted.server.OnClient(kClientAddr, req, t + 100, out);
    for (const auto& s : out) p.client.OnMessage(*stun::Message::Parse(s.data), t + 100);
  }
  EXPECT_EQ(p.client.state(), TurnClient::State::kFailed);
  EXPECT_TRUE(absl::IsUnavailable(p.client.failure())) << p.client.failure();
}

TEST(TurnClientTest, ReleaseIsASignedZeroLifetimeRefresh) {
  Pair p;
  EXPECT_TRUE(p.client.Release().empty()) << "nothing to release yet";
  p.Step(kStart);
  p.Step(kStart);
  std::vector<Send> out;
  p.server.OnClient(kClientAddr, p.client.Release(), kStart + 5, out);
  EXPECT_EQ(p.server.allocations(), 0u);
}

}  // namespace
}  // namespace weft::turn
