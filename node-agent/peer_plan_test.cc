#include "node-agent/peer_plan.h"

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

v1::NodeInfo Node(const std::string& name, char key, const std::string& cidr, const std::string& host,
                  const std::string& reflexive) {
  v1::NodeInfo n;
  n.set_name(name);
  n.set_wireguard_public_key(std::string(32, key));
  n.add_pod_cidrs(cidr);
  auto* h = n.add_candidates();
  h->set_type(v1::CANDIDATE_TYPE_HOST);
  h->mutable_endpoint()->set_ip(host);
  h->mutable_endpoint()->set_port(51820);
  if (!reflexive.empty()) {
    auto* r = n.add_candidates();
    r->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
    r->mutable_endpoint()->set_ip(reflexive);
    r->mutable_endpoint()->set_port(51820);
  }
  return n;
}

v1::PairDirective Directive(v1::PathKind path, bool initiate, bool local = false) {
  v1::PairDirective d;
  d.set_path(path);
  d.set_initiate(initiate);
  d.set_local(local);
  d.set_reason("because");
  return d;
}

std::map<std::string, v1::NodeInfo> Cluster() {
  return {{"me", Node("me", 'm', "10.244.0.0/24", "10.1.0.2", "198.51.100.21")},
          {"pub", Node("pub", 'p', "10.244.1.0/24", "198.51.100.100", "198.51.100.100")},
          {"hard", Node("hard", 'h', "10.244.2.0/24", "10.3.0.2", "")},
          {"lan", Node("lan", 'l', "10.244.3.0/24", "10.1.0.3", "198.51.100.21")}};
}

TEST(PeerPlanTest, EndpointsFollowTheDirectives) {
  std::map<std::string, v1::PairDirective> d = {{"pub", Directive(v1::PATH_KIND_DIRECT, true)},
                                                {"hard", Directive(v1::PATH_KIND_DIRECT, false)},
                                                {"lan", Directive(v1::PATH_KIND_DIRECT, true, /*local=*/true)}};
  auto plan = PlanPeers("me", Cluster(), d);
  ASSERT_EQ(plan.size(), 3u);
  std::map<std::string, PlannedPeer> by;
  for (auto& p : plan) by[p.node] = p;
  EXPECT_EQ(by["pub"].config.endpoint->ToString(), "198.51.100.100:51820");
  EXPECT_FALSE(by["hard"].config.endpoint.has_value()) << "the hard side initiates; we learn its port";
  EXPECT_EQ(by["lan"].config.endpoint->ToString(), "10.1.0.3:51820") << "same NAT: the LAN address";
  EXPECT_EQ(by["pub"].routes[0].ToString(), "10.244.1.0/24");
  EXPECT_EQ(by["pub"].config.persistent_keepalive, 25);
}

TEST(PeerPlanTest, RelayDirectiveMeansNoPathYetWithAReason) {
  auto plan = PlanPeers("me", Cluster(), {{"hard", Directive(v1::PATH_KIND_RELAY, false)}});
  for (const auto& p : plan) {
    if (p.node != "hard") continue;
    EXPECT_EQ(p.path, "none");
    EXPECT_NE(p.reason.find("no relay available"), std::string::npos);
  }
}

TEST(PeerPlanTest, RelayedPairsGoThroughTheLocalRelayEndpoint) {
  const net::Endpoint proxy = *net::Endpoint::Parse("127.0.0.1:40001");
  auto plan = PlanPeers("me", Cluster(), {{"hard", Directive(v1::PATH_KIND_RELAY, false)}}, nullptr, {},
                        [&](const v1::NodeInfo& peer) -> std::optional<net::Endpoint> {
                          if (peer.name() == "hard") return proxy;
                          return std::nullopt;
                        });
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].path, "relay");
  EXPECT_EQ(plan[0].config.endpoint, proxy);
}

TEST(PeerPlanTest, EachPairCarriesItsDecisionForThePathStateMachine) {
  std::map<std::string, v1::PairDirective> d = {{"pub", Directive(v1::PATH_KIND_DIRECT, true)},
                                                {"hard", Directive(v1::PATH_KIND_RELAY, false)},
                                                {"lan", Directive(v1::PATH_KIND_DIRECT, false, /*local=*/true)}};
  std::map<std::string, PlannedPeer> by;
  for (auto& p : PlanPeers("me", Cluster(), d)) by[p.node] = p;
  ASSERT_TRUE(by["pub"].decision.has_value());
  EXPECT_TRUE(by["pub"].decision->direct);
  EXPECT_EQ(by["pub"].decision->send_to->ToString(), "198.51.100.100:51820");
  ASSERT_EQ(by["pub"].decision->punch.size(), 1u);
  EXPECT_EQ(by["pub"].decision->reason, "because");
  EXPECT_FALSE(by["hard"].decision->direct);
  EXPECT_EQ(by["lan"].decision->punch[0].ToString(), "10.1.0.3:51820") << "same NAT: punch the LAN address";
}

TEST(PeerPlanTest, NoDecisionYetMeansNothingNewIsSent) {
  // Until a decision, nothing is sent: no hole punched where the table will say relay.
  EXPECT_TRUE(PlanPeers("me", Cluster(), {}).empty());
  // What the device already has (a restarted agent) stays as it was.
  auto before = PlanPeers("me", Cluster(), {{"pub", Directive(v1::PATH_KIND_DIRECT, true)}});
  ASSERT_EQ(before.size(), 1u);
  auto kept = PlanPeers("me", Cluster(), {}, nullptr, before);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(DiffPeers(before, kept).peers.empty());
}

TEST(PeerPlanTest, DecidesLocallyWhileTheControllersWordIsOnItsWay) {
  auto with_nat = [](v1::NodeInfo n, v1::NatMapping m) {
    n.mutable_nat()->set_mapping(m);
    n.mutable_nat()->set_filtering(v1::NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT);
    n.mutable_nat()->set_public_ip(n.candidates(n.candidates_size() - 1).endpoint().ip());
    return n;
  };
  auto cluster = Cluster();
  cluster["pub"] = with_nat(cluster["pub"], v1::NAT_MAPPING_NONE);
  cluster["hard"] = with_nat(cluster["hard"], v1::NAT_MAPPING_ENDPOINT_DEPENDENT);
  cluster.erase("lan");
  const v1::NodeInfo me = with_nat(cluster["me"], v1::NAT_MAPPING_ENDPOINT_INDEPENDENT);
  std::map<std::string, PlannedPeer> by;
  for (auto& p : PlanPeers("me", cluster, {}, &me)) by[p.node] = p;
  EXPECT_EQ(by["pub"].path, "direct");
  EXPECT_EQ(by["pub"].config.endpoint->ToString(), "198.51.100.100:51820");
  EXPECT_EQ(by["hard"].path, "none") << by["hard"].reason;  // easy, port-restricted <-> hard: relay
  EXPECT_FALSE(by["hard"].config.endpoint.has_value());
}

TEST(PeerPlanTest, DiffTouchesOnlyWhatChanged) {
  const std::map<std::string, v1::PairDirective> d = {{"pub", Directive(v1::PATH_KIND_DIRECT, true)},
                                                      {"hard", Directive(v1::PATH_KIND_DIRECT, false)},
                                                      {"lan", Directive(v1::PATH_KIND_DIRECT, true, true)}};
  auto before = PlanPeers("me", Cluster(), d);
  EXPECT_TRUE(DiffPeers(before, before).peers.empty()) << "no change, no message";
  auto cluster = Cluster();
  cluster.erase("lan");
  cluster["pub"].mutable_candidates(1)->mutable_endpoint()->set_port(40000);
  auto after = PlanPeers("me", cluster, d);
  auto diff = DiffPeers(before, after);
  ASSERT_EQ(diff.peers.size(), 2u);
  int removed = 0, updated = 0;
  for (const auto& p : diff.peers) (p.remove ? removed : updated)++;
  EXPECT_EQ(removed, 1);
  EXPECT_EQ(updated, 1);
  EXPECT_FALSE(diff.replace_peers) << "replacing the peer list would drop every session";
}


TEST(PeerPlanTest, AnIpv6DirectiveSendsAndPunchesToThePeersGlobalIpv6) {
  auto cluster = Cluster();
  auto* c = cluster["hard"].add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_HOST);
  c->mutable_endpoint()->set_ip("2001:db8:3::2");
  c->mutable_endpoint()->set_port(51820);
  v1::PairDirective d = Directive(v1::PATH_KIND_DIRECT, true);
  d.set_both_initiate(true);
  d.set_ipv6(true);
  auto plan = PlanPeers("me", cluster, {{"hard", d}});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].path, "direct");
  ASSERT_TRUE(plan[0].config.endpoint.has_value());
  EXPECT_EQ(plan[0].config.endpoint->ToString(), "[2001:db8:3::2]:51820");
  ASSERT_TRUE(plan[0].decision.has_value());
  EXPECT_TRUE(plan[0].decision->direct);
  ASSERT_EQ(plan[0].decision->punch.size(), 1u) << "punches open this side's firewall";
  EXPECT_EQ(plan[0].decision->punch[0].ToString(), "[2001:db8:3::2]:51820");
  EXPECT_TRUE(plan[0].decision->yield) << "\"me\" is named after \"hard\": this side sends a second later";
}

}  // namespace
}  // namespace weft::agent
