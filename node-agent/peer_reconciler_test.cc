// The reconciler against a WireGuard device in memory (lib/testing/fake_device.h): what
// the device holds after each step, and that nothing is written when nothing changed.
#include "node-agent/peer_reconciler.h"

#include "gtest/gtest.h"
#include "lib/testing/fake_device.h"

namespace weft::agent {
namespace {

wireguard::Key KeyOf(char c) {
  wireguard::Key k;
  k.bytes.fill(static_cast<uint8_t>(c));
  return k;
}

v1::NodeInfo Node(const std::string& name, char key, const std::string& cidr, const std::string& reflexive) {
  v1::NodeInfo n;
  n.set_name(name);
  n.set_wireguard_public_key(std::string(32, key));
  n.add_pod_cidrs(cidr);
  auto* r = n.add_candidates();
  r->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  r->mutable_endpoint()->set_ip(reflexive);
  r->mutable_endpoint()->set_port(51820);
  return n;
}

v1::PairDirective Directive(v1::PathKind path, bool initiate) {
  v1::PairDirective d;
  d.set_path(path);
  d.set_initiate(initiate);
  d.set_reason("decided");
  return d;
}

const net::Endpoint kProxy = *net::Endpoint::Parse("127.0.0.1:40001");

class PeerReconcilerTest : public ::testing::Test {
 protected:
  PeerReconcilerTest() {
    nodes_ = {{"me", Node("me", 'm', "10.244.0.0/24", "198.51.100.1")},
              {"pub", Node("pub", 'p', "10.244.1.0/24", "198.51.100.100")},
              {"hard", Node("hard", 'h', "10.244.2.0/24", "203.0.113.7")}};
  }
  PeerReconciler::Inputs In() {
    return {.nodes = &nodes_, .directives = &directives_, .proxies = proxies_};
  }
  absl::Status Step(PeerReconciler& r, int64_t now, std::vector<net::Endpoint>* punch = nullptr) {
    return r.Reconcile(In(), now, device_, punch);
  }
  std::map<std::string, v1::NodeInfo> nodes_;
  std::map<std::string, v1::PairDirective> directives_;
  std::map<std::string, net::Endpoint> proxies_;
  testing::FakeDevice device_;
};

TEST_F(PeerReconcilerTest, ADirectPairPunchesFirstThenSends) {
  PeerReconciler r("me");
  directives_["pub"] = Directive(v1::PATH_KIND_DIRECT, true);
  std::vector<net::Endpoint> punch;
  ASSERT_TRUE(Step(r, 0, &punch).ok());
  // Opening: in the device (its handshake is answered) with neither endpoint nor
  // keepalive, and our NAT is opened towards it first.
  const wireguard::PeerStatus* p = device_.peer(KeyOf('p'));
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->endpoint.has_value());
  EXPECT_EQ(p->persistent_keepalive, 0);
  ASSERT_EQ(punch.size(), 1u);
  EXPECT_EQ(punch[0].ToString(), "198.51.100.100:51820");
  ASSERT_EQ(p->allowed_ips.size(), 1u);
  EXPECT_EQ(p->allowed_ips[0].ToString(), "10.244.1.0/24");
  // The punch had its time: the path machine says so, and the next reconcile sends.
  nat::PeerPath& pp = r.paths().at("pub");
  for (int64_t t = 0; t <= 2000 && pp.state() != nat::PeerPath::State::kDirect; t += 250) pp.Tick(t);
  ASSERT_EQ(pp.state(), nat::PeerPath::State::kDirect);
  ASSERT_TRUE(Step(r, 2000).ok());
  p = device_.peer(KeyOf('p'));
  ASSERT_TRUE(p->endpoint.has_value());
  EXPECT_EQ(p->endpoint->ToString(), "198.51.100.100:51820");
  EXPECT_EQ(p->persistent_keepalive, 25);
  EXPECT_EQ(r.applied().at(0).path, "direct");
}

TEST_F(PeerReconcilerTest, NothingChangedNothingWritten) {
  PeerReconciler r("me");
  directives_["pub"] = Directive(v1::PATH_KIND_DIRECT, true);
  directives_["hard"] = Directive(v1::PATH_KIND_RELAY, false);
  proxies_["hard"] = kProxy;
  ASSERT_TRUE(Step(r, 0).ok());
  const size_t writes = device_.sets().size();
  EXPECT_EQ(writes, 1u) << "both peers in one write";
  ASSERT_TRUE(Step(r, 100).ok());
  ASSERT_TRUE(Step(r, 200).ok());
  EXPECT_EQ(device_.sets().size(), writes) << "no change, no write: nothing flaps";
}

// A report's N-1 directives taken in one reconcile make one device write with every peer.
TEST_F(PeerReconcilerTest, ABurstOfDirectivesIsOneWrite) {
  PeerReconciler r("me");
  for (int i = 0; i < 50; ++i) {
    const std::string name = "n" + std::to_string(i);
    nodes_[name] = Node(name, static_cast<char>('A' + i), "10.245." + std::to_string(i) + ".0/24",
                        "198.51.100." + std::to_string(10 + i));
    directives_[name] = Directive(v1::PATH_KIND_DIRECT, false);
  }
  ASSERT_TRUE(Step(r, 0).ok());
  ASSERT_EQ(device_.sets().size(), 1u);
  EXPECT_EQ(device_.sets()[0].peers.size(), 50u);
  EXPECT_EQ(device_.status().peers.size(), 50u);
}

TEST_F(PeerReconcilerTest, ARelayedPairSendsToTheLocalProxy) {
  PeerReconciler r("me");
  directives_["hard"] = Directive(v1::PATH_KIND_RELAY, false);
  proxies_["hard"] = kProxy;
  ASSERT_TRUE(Step(r, 0).ok());
  const wireguard::PeerStatus* p = device_.peer(KeyOf('h'));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->endpoint, kProxy);
  EXPECT_EQ(EndpointPath(p->endpoint), nat::Path::kRelay);
  EXPECT_EQ(r.applied().at(0).path, "relay");
}

TEST_F(PeerReconcilerTest, APeerThatLeftIsRemovedWithItsPathMachine) {
  PeerReconciler r("me");
  directives_["pub"] = Directive(v1::PATH_KIND_DIRECT, true);
  ASSERT_TRUE(Step(r, 0).ok());
  ASSERT_NE(device_.peer(KeyOf('p')), nullptr);
  nodes_.erase("pub");
  directives_.erase("pub");
  ASSERT_TRUE(Step(r, 100).ok());
  EXPECT_EQ(device_.peer(KeyOf('p')), nullptr);
  EXPECT_TRUE(r.paths().empty());
  EXPECT_TRUE(r.applied().empty());
}

// A restarted agent adopts the device: a pair already sending direct is not paused to
// punch again, and nothing is written for it.
TEST_F(PeerReconcilerTest, AnAdoptedDirectPairIsNotPaused) {
  PeerReconciler first("me");
  directives_["pub"] = Directive(v1::PATH_KIND_DIRECT, true);
  ASSERT_TRUE(Step(first, 0).ok());
  for (int64_t t = 0; t <= 2000; t += 250) first.paths().at("pub").Tick(t);
  ASSERT_TRUE(Step(first, 2000).ok());
  ASSERT_TRUE(device_.peer(KeyOf('p'))->endpoint.has_value());
  const size_t writes = device_.sets().size();

  PeerReconciler restarted("me", first.applied());
  std::vector<net::Endpoint> punch;
  ASSERT_TRUE(Step(restarted, 5000, &punch).ok());
  EXPECT_TRUE(punch.empty());
  EXPECT_EQ(device_.peer(KeyOf('p'))->endpoint->ToString(), "198.51.100.100:51820");
  EXPECT_EQ(device_.sets().size(), writes) << "an adopted working pair is left as it is";
}

TEST_F(PeerReconcilerTest, ARefusedWriteIsWrittenAgainNextTime) {
  PeerReconciler r("me");
  directives_["hard"] = Directive(v1::PATH_KIND_RELAY, false);
  proxies_["hard"] = kProxy;
  device_.FailNextSet();
  EXPECT_FALSE(Step(r, 0).ok());
  EXPECT_TRUE(r.applied().empty()) << "not applied: not recorded as applied";
  ASSERT_TRUE(Step(r, 100).ok());
  ASSERT_NE(device_.peer(KeyOf('h')), nullptr);
  EXPECT_EQ(device_.peer(KeyOf('h'))->endpoint, kProxy);
}

// A direct path that stops answering (tx without rx, probes unanswered) falls back to the
// relay: the device is pointed at the proxy.
TEST_F(PeerReconcilerTest, ADeadDirectPathFallsBackToTheRelayInTheDevice) {
  PeerReconciler r("me");
  directives_["pub"] = Directive(v1::PATH_KIND_DIRECT, true);
  proxies_["pub"] = kProxy;
  ASSERT_TRUE(Step(r, 0).ok());
  int64_t t = 0;
  for (; t <= 2000; t += 250) r.paths().at("pub").Tick(t);
  ASSERT_TRUE(Step(r, t).ok());
  ASSERT_EQ(EndpointPath(device_.peer(KeyOf('p'))->endpoint), nat::Path::kDirect);
  // Traffic goes out and nothing comes back, and no probe is answered.
  uint64_t tx = 1000;
  bool moved = false;
  for (int i = 0; i < 40 && !moved; ++i, t += 250) {
    tx += 148;
    nat::PeerPath& pp = r.paths().at("pub");
    pp.Observe({.rx_bytes = 500, .tx_bytes = tx, .endpoint_path = nat::Path::kDirect}, t);
    if (pp.Tick(t).reconfigure) {
      ASSERT_TRUE(Step(r, t).ok());
      moved = EndpointPath(device_.peer(KeyOf('p'))->endpoint) == nat::Path::kRelay;
    }
  }
  ASSERT_TRUE(moved) << r.paths().at("pub").reason();
  EXPECT_EQ(device_.peer(KeyOf('p'))->endpoint, kProxy);
  EXPECT_EQ(r.applied().at(0).path, "relay");
  EXPECT_NE(r.applied().at(0).reason, "decided") << "the reason says why it differs from the decision";
}

}  // namespace
}  // namespace weft::agent
