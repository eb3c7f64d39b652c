#include "controller/agent_input.h"

#include "gtest/gtest.h"

namespace weft::controller {
namespace {

v1::NodeInfo Honest() {
  v1::NodeInfo n;
  n.set_name("node-a.example");
  n.set_wireguard_public_key(std::string(32, 'k'));
  n.add_pod_cidrs("10.244.1.0/24");
  auto* c = n.add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_HOST);
  c->mutable_endpoint()->set_ip("192.0.2.10");
  c->mutable_endpoint()->set_port(51820);
  c = n.add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip("2001:db8::1");
  c->mutable_endpoint()->set_port(40000);
  n.mutable_nat()->set_mapping(v1::NAT_MAPPING_ENDPOINT_INDEPENDENT);
  n.mutable_nat()->set_public_ip("203.0.113.5");
  n.mutable_nat()->set_reason("cone");
  n.mutable_snat()->add_randomizing_rules("iptables-nft ip nat AWS-SNAT-CHAIN-0: -A ... --random-fully");
  return n;
}

TEST(AgentInputTest, HonestNodePasses) { EXPECT_TRUE(CheckNodeInfo(Honest()).ok()); }

TEST(AgentInputTest, NodeNamesAreRfc1123Subdomains) {
  for (const std::string& good : {std::string("a"), std::string("ip-10-0-1-2.ec2.internal"), std::string("node-1"),
                                  std::string(63, 'x')}) {
    EXPECT_TRUE(CheckNodeName(good).ok()) << good;
  }
  for (std::string bad : {std::string(), std::string("Node-A"), std::string("-a"), std::string("a-"),
                          std::string("a..b"), std::string("a b"), std::string("a\"} 1\n"), std::string(64, 'x'),
                          std::string(254, 'a'), std::string("a_b"), std::string("n\xc3\xa9")}) {
    EXPECT_FALSE(CheckNodeName(bad).ok()) << bad;
  }
}

TEST(AgentInputTest, EndpointsMustBeReachableUnicast) {
  v1::Endpoint e;
  e.set_port(51820);
  for (const char* good : {"192.0.2.1", "10.0.0.1", "198.51.100.200", "2001:db8::1", "fd00::1"}) {
    e.set_ip(good);
    EXPECT_TRUE(CheckEndpoint(e).ok()) << good;
  }
  for (const char* bad : {"", "x", "0.0.0.0", "0.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.1", "255.255.255.255",
                          "240.0.0.1", "::", "::1", "ff02::1", "fe80::1", "10.0.0.1/8"}) {
    e.set_ip(bad);
    EXPECT_FALSE(CheckEndpoint(e).ok()) << bad;
  }
  e.set_ip("192.0.2.1");
  e.set_port(0);
  EXPECT_FALSE(CheckEndpoint(e).ok());
  e.set_port(65536);
  EXPECT_FALSE(CheckEndpoint(e).ok());
}

TEST(AgentInputTest, EachBadFieldIsNamed) {
  struct Case {
    std::function<void(v1::NodeInfo&)> spoil;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](v1::NodeInfo& n) { n.set_name("A"); }, "name"},
      {[](v1::NodeInfo& n) { n.set_wireguard_public_key("short"); }, "32 bytes"},
      {[](v1::NodeInfo& n) { n.set_wireguard_public_key(std::string(32, '\0')); }, "all zeros"},
      {[](v1::NodeInfo& n) {
         for (int i = 0; i < 100; ++i) *n.add_candidates() = n.candidates(0);
       },
       "102 candidates: at most 16"},
      {[](v1::NodeInfo& n) { n.mutable_candidates(1)->mutable_endpoint()->set_ip("0.0.0.0"); }, "candidates[1]"},
      {[](v1::NodeInfo& n) { n.mutable_candidates(0)->mutable_endpoint()->set_port(0); }, "candidates[0]: port"},
      {[](v1::NodeInfo& n) { n.mutable_candidates(0)->set_type(v1::CANDIDATE_TYPE_UNSPECIFIED); }, "type"},
      {[](v1::NodeInfo& n) { n.mutable_candidates(0)->set_type(static_cast<v1::CandidateType>(77)); }, "type"},
      {[](v1::NodeInfo& n) { n.mutable_nat()->set_mapping(static_cast<v1::NatMapping>(9)); }, "nat.mapping"},
      {[](v1::NodeInfo& n) { n.mutable_nat()->set_reason(std::string(513, 'r')); }, "nat.reason"},
      {[](v1::NodeInfo& n) { n.mutable_nat()->set_public_ip("eve"); }, "nat.public_ip"},
      {[](v1::NodeInfo& n) { n.mutable_nat()->mutable_reflexive()->set_ip("127.0.0.1"); }, "nat.reflexive"},
      {[](v1::NodeInfo& n) {
         for (int i = 0; i < 17; ++i) n.mutable_snat()->add_randomizing_rules("r");
       },
       "randomizing_rules"},
      {[](v1::NodeInfo& n) { n.mutable_snat()->mutable_before_mitigation()->set_reason(std::string(600, 'x')); },
       "snat.before_mitigation.reason"},
      {[](v1::NodeInfo& n) {
         for (int i = 0; i < 4; ++i) n.add_pod_cidrs("0.0.0.0/1");
       },
       "pod_cidrs"},
  };
  for (const auto& c : cases) {
    v1::NodeInfo n = Honest();
    c.spoil(n);
    absl::Status s = CheckNodeInfo(n);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.says;
    EXPECT_NE(s.message().find(c.says), absl::string_view::npos) << s.message();
  }
}

TEST(AgentInputTest, HelloIsBounded) {
  v1::Hello h;
  h.set_node("n1");
  h.set_token("t");
  EXPECT_TRUE(CheckHello(h).ok());
  h.set_token(std::string(kMaxToken + 1, 't'));
  EXPECT_FALSE(CheckHello(h).ok());
  h.set_token("t");
  h.add_pod_cidrs("10.244.1.0/24; drop");
  EXPECT_FALSE(CheckHello(h).ok());
  h.clear_pod_cidrs();
  h.set_node("N1");
  EXPECT_FALSE(CheckHello(h).ok());
}

TEST(AgentInputTest, HealthSpeaksOnlyOfTheNodesOwnPeersOnce) {
  v1::HealthReport r;
  auto add = [&](const std::string& peer, const std::string& ip, uint32_t port) {
    auto* h = r.add_peers();
    h->set_peer(peer);
    h->mutable_endpoint()->set_ip(ip);
    h->mutable_endpoint()->set_port(port);
    return h;
  };
  add("b", "192.0.2.2", 51820);
  add("c", "", 0);                               // no endpoint yet: fine
  add("b", "192.0.2.9", 51820);                  // twice
  add("self", "192.0.2.1", 51820);               // not a peer
  add("ghost", "192.0.2.3", 51820);              // no such node
  add("d", "10.0.0.1", 70000);                   // no such port
  add("f", "127.0.0.1", 40001);                  // relayed: WireGuard sends to the local proxy
  add("e", "192.0.2.5", 51820)->set_reason(std::string(600, 'x'));
  size_t dropped = 0;
  v1::HealthReport out = CleanHealth(
      r, [](const std::string& p) { return p == "b" || p == "c" || p == "d" || p == "e" || p == "f"; }, &dropped);
  ASSERT_EQ(out.peers_size(), 3);
  EXPECT_EQ(out.peers(0).peer(), "b");
  EXPECT_EQ(out.peers(0).endpoint().ip(), "192.0.2.2");
  EXPECT_EQ(out.peers(1).peer(), "c");
  EXPECT_EQ(out.peers(2).peer(), "f");
  EXPECT_EQ(dropped, 5u);
}

}  // namespace
}  // namespace weft::controller
