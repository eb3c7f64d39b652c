#include "node-agent/peer_guard.h"

#include <random>

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

v1::NodeInfo Node(const std::string& name, std::vector<std::string> cidrs, char key) {
  v1::NodeInfo n;
  n.set_name(name);
  n.set_wireguard_public_key(std::string(32, key));
  for (const auto& c : cidrs) n.add_pod_cidrs(c);
  return n;
}

std::vector<std::string> Cidrs(const GuardedPeers& g, const std::string& node) {
  const v1::NodeInfo& n = g.nodes.at(node);
  return {n.pod_cidrs().begin(), n.pod_cidrs().end()};
}

class PeerGuardTest : public ::testing::Test {
 protected:
  GuardedPeers Guard(const std::map<std::string, v1::NodeInfo>& nodes) {
    return GuardPeers("self", {*net::IpPrefix::Parse("10.244.0.0/24")}, std::string(32, 's'),
                      {*net::IpPrefix::Parse("10.244.0.0/16")}, nodes);
  }
};

TEST_F(PeerGuardTest, HonestPeersPassUnchanged) {
  std::map<std::string, v1::NodeInfo> nodes = {{"self", Node("self", {"10.244.0.0/24"}, 's')},
                                               {"a", Node("a", {"10.244.1.0/24"}, 'a')},
                                               {"b", Node("b", {"10.244.2.0/24"}, 'b')}};
  GuardedPeers g = Guard(nodes);
  EXPECT_TRUE(g.refused.empty());
  for (const auto& [name, n] : nodes) EXPECT_EQ(g.nodes.at(name).SerializeAsString(), n.SerializeAsString()) << name;
}

TEST_F(PeerGuardTest, PrefixesOutsideTheClusterOrOverOursAreRefused) {
  GuardedPeers g = Guard({{"rogue", Node("rogue", {"0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/0", "192.0.2.0/24",
                                                   "10.244.0.0/25", "10.0.0.0/8", "10.244.9.1/24", "x",
                                                   "10.244.7.0/24"},
                                         'r')}});
  EXPECT_EQ(Cidrs(g, "rogue"), std::vector<std::string>{"10.244.7.0/24"});
  const std::string& why = g.refused.at("rogue");
  EXPECT_NE(why.find("0.0.0.0/1 is outside the cluster CIDRs"), std::string::npos) << why;
  EXPECT_NE(why.find("10.244.0.0/25 overlaps this node's own"), std::string::npos) << why;
  EXPECT_NE(why.find("10.0.0.0/8 is outside"), std::string::npos) << why;
  EXPECT_NE(why.find("\"10.244.9.1/24\" is not a network"), std::string::npos) << why;
}

TEST_F(PeerGuardTest, APeerClaimingAnothersPrefixTakesNothingFromIt) {
  GuardedPeers g = Guard({{"victim", Node("victim", {"10.244.1.0/24"}, 'v')},
                          {"rogue", Node("rogue", {"10.244.2.0/24", "10.244.1.128/25"}, 'r')}});
  // Neither keeps the contested addresses: the rogue gets none of the victim's traffic
  // (the victim's pods are unreachable from here until the controller is fixed: loud, not silent).
  EXPECT_EQ(Cidrs(g, "rogue"), std::vector<std::string>{"10.244.2.0/24"});
  EXPECT_TRUE(Cidrs(g, "victim").empty());
  EXPECT_TRUE(g.refused.contains("victim"));
  EXPECT_NE(g.refused.at("rogue").find("overlaps victim's"), std::string::npos);
}

// Against the plain definition (a prefix is dropped when another node's overlaps it),
// over random nested and disjoint claims.
TEST_F(PeerGuardTest, OverlapsAreFoundAsByComparingEveryPair) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::map<std::string, v1::NodeInfo> nodes;
    for (int n = 0; n < 20; ++n) {
      std::vector<std::string> cidrs;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 2); ++k) {
        const int len = 18 + static_cast<int>(rng() % 8);
        const uint32_t base = (10u << 24) | (244u << 16) | (1u << 8) * (1 + rng() % 200);
        cidrs.push_back(net::IpPrefix{net::IpAddress::V4(base), len}.First().ToString() + "/" + std::to_string(len));
      }
      const std::string name = "n" + std::to_string(n);
      nodes[name] = Node(name, cidrs, static_cast<char>('A' + n));
    }
    GuardedPeers g = Guard(nodes);
    for (const auto& [name, n] : nodes) {
      std::vector<std::string> want;
      for (const auto& c : n.pod_cidrs()) {
        const net::IpPrefix p = *net::IpPrefix::Parse(c);
        if (p.Overlaps(*net::IpPrefix::Parse("10.244.0.0/24"))) continue;  // ours
        bool contested = false;
        for (const auto& [other, o] : nodes) {
          if (other == name) continue;
          for (const auto& oc : o.pod_cidrs()) {
            const net::IpPrefix q = *net::IpPrefix::Parse(oc);
            if (!q.Overlaps(*net::IpPrefix::Parse("10.244.0.0/24")) && q.Overlaps(p)) contested = true;
          }
        }
        if (!contested) want.push_back(c);
      }
      EXPECT_EQ(Cidrs(g, name), want) << "round " << round << " node " << name;
    }
  }
}

TEST_F(PeerGuardTest, AKeyTwiceOrOurOwnIsRefused) {
  GuardedPeers g = Guard({{"a", Node("a", {"10.244.1.0/24"}, 'k')},
                          {"b", Node("b", {"10.244.2.0/24"}, 'k')},
                          {"c", Node("c", {"10.244.3.0/24"}, 's')},
                          {"d", Node("d", {"10.244.4.0/24"}, 'd')}});
  EXPECT_TRUE(g.nodes.at("a").wireguard_public_key().empty());
  EXPECT_TRUE(g.nodes.at("b").wireguard_public_key().empty());
  EXPECT_TRUE(g.nodes.at("c").wireguard_public_key().empty());
  EXPECT_EQ(g.nodes.at("d").wireguard_public_key(), std::string(32, 'd'));
  EXPECT_NE(g.refused.at("c").find("this node's"), std::string::npos);
  EXPECT_FALSE(g.refused.contains("d"));
}

TEST_F(PeerGuardTest, WithoutClusterCidrsNothingIsRouted) {
  GuardedPeers g = GuardPeers("self", {}, "", {}, {{"a", Node("a", {"10.244.1.0/24"}, 'a')}});
  EXPECT_TRUE(Cidrs(g, "a").empty());
  EXPECT_TRUE(g.refused.contains("a"));
}

}  // namespace
}  // namespace weft::agent
