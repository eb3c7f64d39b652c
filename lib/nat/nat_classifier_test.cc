#include "lib/nat/nat_classifier.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace weft::nat {
namespace {

net::Endpoint E(const char* s) { return *net::Endpoint::Parse(s); }

Observations Obs(std::vector<std::pair<const char*, const char*>> probes) {
  Observations o{.local_port = 51820, .local_ips = {*net::IpAddress::Parse("10.1.0.2")}};
  for (auto [server, mapped] : probes) {
    Probe p{.server = E(server)};
    if (mapped) p.mapped = E(mapped);
    o.probes.push_back(p);
  }
  return o;
}

struct Case {
  const char* name;
  Observations obs;
  Mapping mapping;
  bool udp_blocked;
  bool port_preserved;
};

TEST(NatClassifierTest, Table) {
  const char* s1 = "192.0.2.10:3478";
  const char* s2 = "192.0.2.11:3479";
  const char* s3 = "192.0.2.12:3480";
  std::vector<Case> cases = {
      {"public_node", Obs({{s1, "10.1.0.2:51820"}, {s2, "10.1.0.2:51820"}, {s3, "10.1.0.2:51820"}}), Mapping::kNone, false, true},
      {"easy_port_preserving_masquerade", Obs({{s1, "203.0.113.5:51820"}, {s2, "203.0.113.5:51820"}, {s3, "203.0.113.5:51820"}}),
       Mapping::kEndpointIndependent, false, true},
      {"easy_port_changing", Obs({{s1, "203.0.113.5:1024"}, {s2, "203.0.113.5:1024"}, {s3, "203.0.113.5:1024"}}),
       Mapping::kEndpointIndependent, false, false},
      {"hard_random_fully", Obs({{s1, "203.0.113.5:33012"}, {s2, "203.0.113.5:61877"}, {s3, "203.0.113.5:40110"}}),
       Mapping::kEndpointDependent, false, false},
      // A NAT that randomizes only some destinations: two targets can look easy.
      {"hard_seen_by_third_target_only", Obs({{s1, "203.0.113.5:51820"}, {s2, "203.0.113.5:51820"}, {s3, "203.0.113.5:40110"}}),
       Mapping::kEndpointDependent, false, false},
      {"two_targets_cannot_say_easy", Obs({{s1, "203.0.113.5:51820"}, {s2, "203.0.113.5:51820"}}), Mapping::kUnknown, false, true},
      {"one_target_answered", Obs({{s1, "203.0.113.5:51820"}, {s2, nullptr}, {s3, nullptr}}), Mapping::kUnknown, false, true},
      {"udp_blocked", Obs({{s1, nullptr}, {s2, nullptr}, {s3, nullptr}}), Mapping::kUnknown, true, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Verdict v = Classify(c.obs);
    EXPECT_EQ(v.mapping, c.mapping) << v.reason;
    EXPECT_EQ(v.udp_blocked, c.udp_blocked) << v.reason;
    if (!c.udp_blocked) {
      EXPECT_EQ(v.port_preserved, c.port_preserved) << v.reason;
    }
    EXPECT_FALSE(v.reason.empty());
    if (c.mapping == Mapping::kEndpointDependent) {
      EXPECT_FALSE(v.reflexive.has_value());
      EXPECT_EQ(v.public_ip->ToString(), "203.0.113.5") << "one public IP, ports vary";
    }
  }
}

// An IPv6-only node cannot send to an IPv4 STUN server at all: the verdict says so rather
// than "UDP blocked"; a path decision treats both alike (no IPv4 path).
TEST(NatClassifierTest, NoRouteToAnyTargetIsNotCalledAFirewall) {
  Observations o = Obs({{"192.0.2.10:3478", nullptr}, {"192.0.2.11:3479", nullptr}, {"192.0.2.12:3480", nullptr}});
  o.unroutable = 3;
  Verdict v = Classify(o);
  EXPECT_TRUE(v.udp_blocked);
  EXPECT_EQ(v.reason, "no route to any of 3 STUN targets (a node without IPv4?)");
  o.unroutable = 2;  // one was routed and went unanswered: a firewall
  EXPECT_TRUE(absl::StartsWith(Classify(o).reason, "UDP blocked")) << Classify(o).reason;
}

TEST(NatClassifierTest, EasyVerdictCarriesTheReflexiveEndpoint) {
  Verdict v = Classify(Obs({{"192.0.2.10:3478", "203.0.113.5:51820"}, {"192.0.2.11:3478", "203.0.113.5:51820"},
                            {"192.0.2.12:3478", "203.0.113.5:51820"}}));
  ASSERT_TRUE(v.reflexive.has_value());
  EXPECT_EQ(v.reflexive->ToString(), "203.0.113.5:51820");
  EXPECT_EQ(v.answered, 3);
}

TEST(NatClassifierTest, Filtering) {
  auto o = Obs({{"192.0.2.10:3478", "203.0.113.5:51820"}});
  o.answered_from_other_address = false;
  o.answered_from_other_port = true;
  EXPECT_EQ(Classify(o).filtering, Filtering::kAddressDependent);
  o.answered_from_other_address = true;
  EXPECT_EQ(Classify(o).filtering, Filtering::kEndpointIndependent);
  o.answered_from_other_address = false;
  o.answered_from_other_port = false;
  EXPECT_EQ(Classify(o).filtering, Filtering::kAddressAndPortDependent);
}

}  // namespace
}  // namespace weft::nat
