#include "lib/nat/path_strategy.h"

#include "gtest/gtest.h"

namespace weft::nat {
namespace {

NodeNat Node(const char* name, Mapping m, Filtering f = Filtering::kAddressAndPortDependent,
             const char* ip = nullptr, bool blocked = false) {
  NodeNat n{name};
  n.nat.mapping = m;
  n.nat.filtering = f;
  n.nat.udp_blocked = blocked;
  if (ip) n.public_ip = *net::IpAddress::Parse(ip);
  return n;
}

struct Case {
  const char* name;
  NodeNat a, b;
  PathKind path;
  Initiator initiator;
};

// DESIGN.md's strategy table, cell by cell, both ways round.
TEST(PathStrategyTest, StrategyTable) {
  const NodeNat pub = Node("pub", Mapping::kNone, Filtering::kEndpointIndependent, "198.51.100.100");
  const NodeNat easy = Node("easy", Mapping::kEndpointIndependent, Filtering::kAddressAndPortDependent, "198.51.100.21");
  const NodeNat easy2 = Node("easy2", Mapping::kEndpointIndependent, Filtering::kAddressAndPortDependent, "198.51.100.29");
  const NodeNat cone = Node("cone", Mapping::kEndpointIndependent, Filtering::kEndpointIndependent, "198.51.100.22");
  const NodeNat hard = Node("hard", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.23");
  const NodeNat hard2 = Node("hard2", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.27");
  const NodeNat blocked = Node("blocked", Mapping::kUnknown, Filtering::kUnknown, nullptr, true);
  std::vector<Case> cases = {
      {"public_public", pub, Node("pub2", Mapping::kNone, Filtering::kEndpointIndependent, "198.51.100.101"), PathKind::kDirect, Initiator::kEither},
      {"public_easy", pub, easy, PathKind::kDirect, Initiator::kBoth},
      {"easy_public", easy, pub, PathKind::kDirect, Initiator::kBoth},
      {"public_hard_b_initiates", pub, hard, PathKind::kDirect, Initiator::kB},
      {"hard_public_a_initiates", hard, pub, PathKind::kDirect, Initiator::kA},
      {"easy_easy_punch", easy, easy2, PathKind::kDirect, Initiator::kBoth},
      {"easy_port_restricted_hard", easy, hard, PathKind::kRelayUdp, Initiator::kNone},
      {"hard_easy_port_restricted", hard, easy, PathKind::kRelayUdp, Initiator::kNone},
      {"address_filtering_easy_hard", cone, hard, PathKind::kDirect, Initiator::kBoth},
      {"hard_address_filtering_easy", hard, cone, PathKind::kDirect, Initiator::kBoth},
      {"hard_hard", hard, hard2, PathKind::kRelayUdp, Initiator::kNone},
      {"blocked_public", blocked, pub, PathKind::kRelayTcp, Initiator::kNone},
      {"easy_blocked", easy, blocked, PathKind::kRelayTcp, Initiator::kNone},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    PathDecision d = DecidePath(c.a, c.b);
    EXPECT_EQ(d.path, c.path) << d.reason;
    EXPECT_EQ(d.initiator, c.initiator) << d.reason;
    EXPECT_FALSE(d.reason.empty());
  }
}

TEST(PathStrategyTest, ReasonsNameTheCause) {
  const NodeNat hard = Node("a", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.23");
  const NodeNat hard2 = Node("b", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.27");
  EXPECT_EQ(DecidePath(hard, hard2).reason, "relayed: both nodes behind endpoint-dependent NAT");
  const NodeNat blocked = Node("corp1", Mapping::kUnknown, Filtering::kUnknown, nullptr, true);
  EXPECT_EQ(DecidePath(hard, blocked).reason, "relayed over TCP: UDP is blocked at corp1");
}

TEST(PathStrategyTest, NodesBehindOneNatUseTheLocalNetwork) {
  // Even two hard-NATed nodes: they share the NAT, so no NAT sits between them.
  const NodeNat a = Node("office1", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.25");
  const NodeNat b = Node("office2", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.25");
  PathDecision d = DecidePath(a, b);
  EXPECT_EQ(d.path, PathKind::kDirect);
  EXPECT_TRUE(d.use_host_candidates);
  EXPECT_NE(d.reason.find("198.51.100.25"), std::string::npos);
}


// IPv6 as a way around NAT: where IPv4 would be relayed and both have global IPv6, direct
// over IPv6 with both sending first; where IPv4 is direct already, IPv4 as before.
TEST(PathStrategyTest, GlobalIpv6OnBothSidesTurnsARelayedPairDirect) {
  NodeNat hard = Node("a", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.23");
  NodeNat hard2 = Node("b", Mapping::kEndpointDependent, Filtering::kAddressAndPortDependent, "198.51.100.27");
  NodeNat blocked = Node("c", Mapping::kUnknown, Filtering::kUnknown, nullptr, true);
  NodeNat easy = Node("d", Mapping::kEndpointIndependent, Filtering::kAddressAndPortDependent, "198.51.100.21");
  NodeNat easy2 = Node("e", Mapping::kEndpointIndependent, Filtering::kAddressAndPortDependent, "198.51.100.29");
  EXPECT_EQ(DecidePath(hard, hard2).path, PathKind::kRelayUdp) << "no IPv6: today's table";
  hard.global_ipv6 = *net::IpAddress::Parse("2001:db8:2::2");
  EXPECT_EQ(DecidePath(hard, hard2).path, PathKind::kRelayUdp) << "IPv6 on one side only";
  hard2.global_ipv6 = *net::IpAddress::Parse("2001:db8:3::2");
  for (const auto& [a, b] : {std::pair{hard, hard2}, std::pair{hard2, hard}}) {
    const PathDecision d = DecidePath(a, b);
    EXPECT_EQ(d.path, PathKind::kDirect) << d.reason;
    EXPECT_EQ(d.initiator, Initiator::kBoth);
    EXPECT_TRUE(d.ipv6);
    EXPECT_NE(d.reason.find("direct over IPv6"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("over IPv4: relayed: both nodes behind endpoint-dependent NAT"), std::string::npos)
        << d.reason;
  }
  EXPECT_EQ(DecidePath(hard, hard2), DecidePath(hard2, hard)) << "the same words from either side";
  // UDP blocked over IPv4 (a firewall of the IPv4 path): IPv6 is tried all the same.
  blocked.global_ipv6 = *net::IpAddress::Parse("2001:db8:4::2");
  EXPECT_TRUE(DecidePath(blocked, hard).ipv6);
  // Direct over IPv4 already: stays IPv4.
  easy.global_ipv6 = *net::IpAddress::Parse("2001:db8:5::2");
  easy2.global_ipv6 = *net::IpAddress::Parse("2001:db8:6::2");
  const PathDecision d = DecidePath(easy, easy2);
  EXPECT_EQ(d.path, PathKind::kDirect);
  EXPECT_FALSE(d.ipv6) << d.reason;
}

// A node without IPv4 (an IPv6-only subnet): IPv4 is no path at all, whatever the other
// side; with global IPv6 on both, direct over IPv6, and the reason names the node.
TEST(PathStrategyTest, ANodeWithoutIpv4GoesOverIpv6OrNowhere) {
  NodeNat v6only = Node("a", Mapping::kUnknown, Filtering::kUnknown, nullptr, true);
  v6only.nat.no_route = true;
  NodeNat pub = Node("b", Mapping::kNone, Filtering::kUnknown, "198.51.100.100");
  PathDecision d = DecidePath(v6only, pub);
  EXPECT_NE(d.path, PathKind::kDirect);
  EXPECT_EQ(d.reason, "no IPv4 path: a without IPv4");
  v6only.global_ipv6 = *net::IpAddress::Parse("2001:db8:2::2");
  pub.global_ipv6 = *net::IpAddress::Parse("2001:db8::100");
  d = DecidePath(pub, v6only);
  EXPECT_EQ(d.path, PathKind::kDirect);
  EXPECT_TRUE(d.ipv6);
  EXPECT_NE(d.reason.find("over IPv4: no IPv4 path: a without IPv4"), std::string::npos) << d.reason;
  NodeNat v6only2 = v6only;
  v6only2.name = "c";
  v6only.global_ipv6.reset();  // say ULAs only
  v6only2.global_ipv6.reset();
  EXPECT_EQ(DecidePath(v6only, v6only2).reason, "no IPv4 path: both nodes without IPv4");
}

}  // namespace
}  // namespace weft::nat
