// weft-relay's loop on loopback with the agent's TURN client at both ends of a pair:
// datagrams between two allocations of the same relay are delivered inside the relay,
// with the same permission checks as through the kernel.
#include "relay/udp_relay.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "lib/testing/fake_wireguard.h"
#include "lib/turn/turn_credentials.h"
#include "node-agent/relay_client.h"

namespace weft::relay {
namespace {

constexpr char kSecret[] = "relay-test-secret-0123456789";

using weft::testing::FakeWireGuard;

class UdpRelayTest : public ::testing::Test {
 protected:
  void SetUp() override { StartRelay(600); }
  void StartRelay(int64_t nonce_lifetime_s) {
    RelayOptions o;
    o.turn.nonce_lifetime_s = nonce_lifetime_s;
    o.listen = *net::Endpoint::Parse("127.0.0.1:0");
    o.relay_ip = o.listen.ip;
    o.port_min = 42000;
    o.port_max = 42999;
    o.turn.secrets = {kSecret};
    o.turn.nonce_key = "test-nonce-key";
    auto r = UdpRelay::Create(o);
    ASSERT_TRUE(r.ok()) << r.status();
    relay_ = *std::move(r);
    loop_ = std::jthread([this](std::stop_token st) { relay_->Run(st); });
  }
  std::unique_ptr<agent::RelayClient> Client(const std::string& name, uint16_t wg_port, uint32_t lifetime_s = 600) {
    const int64_t expiry =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 600;
    const turn::Credentials c = turn::IssueCredentials(kSecret, name, expiry);
    auto client = agent::RelayClient::Start({.server = net::LoopbackV4(relay_->port()), .username = c.username,
                                             .password = c.password, .wg_port = wg_port,
                                             .lifetime_s = lifetime_s});
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }
  static bool Delivered(const FakeWireGuard& from, const net::Endpoint& proxy, const FakeWireGuard& to,
                        const std::string& what) {
    return from.DeliveredTo(proxy, to, what);
  }

  std::unique_ptr<UdpRelay> relay_;
  std::jthread loop_;
};

TEST_F(UdpRelayTest, APairOnOneRelayTalksThroughItBothWays) {
  FakeWireGuard wa, wb;
  auto a = Client("node-a", wa.port);
  auto b = Client("node-b", wb.port);
  ASSERT_TRUE(a && b);
  auto a_to_b = a->ProxyFor(b->relayed());
  auto b_to_a = b->ProxyFor(a->relayed());
  ASSERT_TRUE(a_to_b.ok() && b_to_a.ok());
  EXPECT_TRUE(Delivered(wa, *a_to_b, wb, "wireguard ciphertext a->b"));
  EXPECT_TRUE(Delivered(wb, *b_to_a, wa, "wireguard ciphertext b->a"));
  for (int i = 0; i < 50 && relay_->counters().to_clients < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(relay_->counters().to_peers, 2u);
  EXPECT_GE(relay_->counters().to_clients, 2u);
  EXPECT_GE(relay_->delivered_locally(), 2u) << "both ends on this relay: no kernel round trip";
}

TEST_F(UdpRelayTest, AnAllocationWithoutPermissionGetsNothingAndTheDropIsCounted) {
  FakeWireGuard wb, wc;
  auto b = Client("node-b", wb.port);
  auto c = Client("node-c", wc.port);
  ASSERT_TRUE(b && c);
  // c may send to b (its own permission), but b never permitted c.
  auto c_to_b = c->ProxyFor(b->relayed());
  ASSERT_TRUE(c_to_b.ok());
  EXPECT_FALSE(Delivered(wc, *c_to_b, wb, "not for b"));
  EXPECT_GT(relay_->counters().no_permission, 0u);
}

// Nonces go stale (10 minutes on weft-relay and coturn): a Refresh refused with 438 is
// signed again with the new nonce at once, not half a lifetime later, when the
// allocation would have expired. Here: 3 s allocations, 1 s nonces.
TEST_F(UdpRelayTest, AnAllocationOutlivesItsNonces) {
  loop_ = {};
  relay_.reset();
  StartRelay(1);
  FakeWireGuard wa;
  auto a = Client("node-a", wa.port, 3);
  ASSERT_TRUE(a);
  int lost = 0;
  for (int i = 0; i < 80; ++i) {  // 8 s: several refreshes, most with a stale nonce first
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lost += relay_->allocations() != 1;
  }
  EXPECT_EQ(lost, 0);
  EXPECT_TRUE(a->alive());
  EXPECT_GT(relay_->counters().unauthenticated, 0u) << "stale nonces were met";
}

}  // namespace
}  // namespace weft::relay
