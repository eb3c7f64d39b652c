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

}  // namespace
}  // namespace weft::nat
