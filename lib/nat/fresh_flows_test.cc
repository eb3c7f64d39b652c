#include "lib/nat/fresh_flows.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::nat {
namespace {

using std::chrono::seconds;
using testing::HasSubstr;

net::Endpoint E(const char* s) { return *net::Endpoint::Parse(s); }

const std::vector<net::Endpoint> kTargets = {E("198.51.100.11:3478"), E("198.51.100.12:3479"), E("198.51.100.13:3480")};
const FreshFlows::TimePoint kT0{};

// A round's observations: the targets saw `old`, the fresh destination (if any) saw
// `fresh_mapped`; the first target is an RFC 5780 server whose other address is .14:3479.
Observations Round(const char* old, std::optional<net::Endpoint> fresh_to = std::nullopt,
                   const char* fresh_mapped = nullptr) {
  Observations o;
  o.local_port = 51820;
  o.local_ips = {*net::IpAddress::Parse("10.1.0.2")};
  for (const auto& t : kTargets) o.probes.push_back(Probe{.server = t, .mapped = E(old)});
  o.probes[0].other_address = E("198.51.100.14:3479");
  if (fresh_to) {
    o.probes.push_back(Probe{.server = *fresh_to, .fresh = true});
    if (fresh_mapped != nullptr) o.probes.back().mapped = E(fresh_mapped);
  }
  return o;
}

TEST(FreshFlowsTest, NothingIsFreshWithoutAnRfc5780Server) {
  FreshFlows f;
  f.SetTargets(kTargets);
  Observations o = Round("198.51.100.20:51820");
  o.probes[0].other_address.reset();
  f.Learn(o);
  EXPECT_EQ(f.known(), 0u);
  EXPECT_EQ(f.Pick(kT0), std::nullopt);
}

TEST(FreshFlowsTest, AnRfc5780ServerOffersItsThreeOtherAddressAndPortPairsInTurn) {
  FreshFlows f(seconds(35));
  f.SetTargets(kTargets);
  f.Learn(Round("198.51.100.20:51820"));
  EXPECT_EQ(f.known(), 3u);
  std::set<net::Endpoint> seen;
  for (int i = 0; i < 3; ++i) {
    auto e = f.Pick(kT0 + seconds(i));
    ASSERT_TRUE(e.has_value()) << i;
    seen.insert(*e);
    f.Probed(*e, kT0 + seconds(i));
  }
  EXPECT_EQ(seen, (std::set<net::Endpoint>{E("198.51.100.11:3479"), E("198.51.100.14:3478"), E("198.51.100.14:3479")}));
  // All used within 35 s: none is fresh; then the one used longest ago.
  EXPECT_EQ(f.Pick(kT0 + seconds(30)), std::nullopt);
  auto next = f.Pick(kT0 + seconds(36));
  ASSERT_TRUE(next.has_value());
  f.Probed(*next, kT0 + seconds(36));
  auto after = f.Pick(kT0 + seconds(37));
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(*after, *next);
}

TEST(FreshFlowsTest, RelaysComeBeforeRfc5780AlternatesWhichHoldOffTheFilteringTests) {
  FreshFlows f(seconds(35));
  f.SetTargets(kTargets);
  f.Learn(Round("198.51.100.20:51820"));
  f.Offer({E("198.51.100.200:3478")});
  EXPECT_TRUE(f.QuietForFilteringTests(kT0));
  // The relay first: probing it says nothing to an address-filtering NAT about the
  // STUN server's other address.
  ASSERT_EQ(f.Pick(kT0), E("198.51.100.200:3478"));
  f.Probed(E("198.51.100.200:3478"), kT0);
  EXPECT_TRUE(f.QuietForFilteringTests(kT0));
  // Then an alternate: the filtering tests wait until the NAT forgot it.
  auto alt = f.Pick(kT0 + seconds(1));
  ASSERT_TRUE(alt.has_value());
  f.Probed(*alt, kT0 + seconds(1));
  EXPECT_FALSE(f.QuietForFilteringTests(kT0 + seconds(20)));
  EXPECT_TRUE(f.QuietForFilteringTests(kT0 + seconds(36)));
  // The relay is fresh again before the alternates used later.
  EXPECT_EQ(f.Pick(kT0 + seconds(35)), E("198.51.100.200:3478"));
}

TEST(FreshFlowsTest, OfferedServersAreFreshDestinationsToo) {
  FreshFlows f(seconds(35));
  f.SetTargets(kTargets);
  f.Offer({E("198.51.100.30:3478"), kTargets[0]});  // a relay, and a target (never fresh)
  EXPECT_EQ(f.known(), 1u);
  EXPECT_EQ(f.Pick(kT0), E("198.51.100.30:3478"));
  f.Probed(E("198.51.100.30:3478"), kT0);
  f.Offer({E("198.51.100.30:3478")});  // offered again: still used at kT0
  EXPECT_EQ(f.Pick(kT0 + seconds(10)), std::nullopt);
}

TEST(FreshFlowsTest, AFreshFlowSeenFromAnotherAddressLeftByAnotherWayAndIsForgotten) {
  FreshFlows f;
  f.SetTargets(kTargets);
  const net::Endpoint inside = E("10.96.0.30:3478");  // a relay the node reaches without the NAT
  f.Offer({inside});
  ASSERT_EQ(f.Pick(kT0), inside);
  const Observations o = Round("198.51.100.20:51820", inside, "10.1.0.2:51820");
  const Verdict v = f.Settle(Classify(o), o);
  EXPECT_EQ(v.mapping, Mapping::kEndpointIndependent) << v.reason;
  EXPECT_EQ(v.reflexive, E("198.51.100.20:51820"));
  EXPECT_EQ(f.known(), 0u);
  f.Offer({inside});
  EXPECT_EQ(f.Pick(kT0), std::nullopt);
}

TEST(FreshFlowsTest, AnAlternateThatIsAlsoATargetIsNeverFresh) {
  FreshFlows f;
  std::vector<net::Endpoint> targets = kTargets;
  targets.push_back(E("198.51.100.14:3478"));
  f.SetTargets(targets);
  f.Learn(Round("198.51.100.20:51820"));
  EXPECT_EQ(f.known(), 2u);
  f.Probed(E("198.51.100.14:3478"), kT0);  // a target: ignored
  EXPECT_EQ(f.known(), 2u);
}

TEST(FreshFlowsTest, ADestinationAskedToSendToThePortIsNotFreshForAWhile) {
  FreshFlows f(seconds(35));
  f.SetTargets(kTargets);
  f.Learn(Round("198.51.100.20:51820"));
  // The filtering tests had .14:3479 and .11:3479 send to the port: .14:3478 is left.
  f.Solicited(E("198.51.100.14:3479"), kT0);
  f.Solicited(E("198.51.100.11:3479"), kT0);
  EXPECT_EQ(f.Pick(kT0 + seconds(1)), E("198.51.100.14:3478"));
  f.Probed(E("198.51.100.14:3478"), kT0 + seconds(1));
  EXPECT_EQ(f.Pick(kT0 + seconds(2)), std::nullopt);
}

// (rounds) -> (verdicts): what fresh flows show settles the mapping.
TEST(FreshFlowsTest, ANatThatTurnsHardIsSeenOnTheFreshFlowAndStaysHardUntilAFreshFlowSaysOtherwise) {
  FreshFlows f;
  f.SetTargets(kTargets);
  const net::Endpoint fresh = E("198.51.100.14:3478");
  struct Step {
    Observations obs;
    Mapping want;
    const char* reason;
  } steps[] = {
      // Easy: the fresh flow maps like the old ones.
      {Round("198.51.100.20:51820", fresh, "198.51.100.20:51820"), Mapping::kEndpointIndependent, "easy NAT"},
      // The rule swapped: old flows keep :51820, a new one gets another port.
      {Round("198.51.100.20:51820", fresh, "198.51.100.20:40312"), Mapping::kEndpointDependent,
       "while older flows keep 198.51.100.20:51820"},
      // No fresh destination this round: the old flows alone must not make it easy again.
      {Round("198.51.100.20:51820"), Mapping::kEndpointDependent, "new flows are mapped per destination"},
      // The fresh destination did not answer: same.
      {Round("198.51.100.20:51820", fresh), Mapping::kEndpointDependent, "new flows are mapped per destination"},
      // Fixed: a fresh flow maps like the old ones again.
      {Round("198.51.100.20:51820", fresh, "198.51.100.20:51820"), Mapping::kEndpointIndependent, "easy NAT"},
      {Round("198.51.100.20:51820"), Mapping::kEndpointIndependent, "easy NAT"},
  };
  int i = 0;
  for (const Step& s : steps) {
    const Verdict v = f.Settle(Classify(s.obs), s.obs);
    EXPECT_EQ(v.mapping, s.want) << "step " << i << ": " << v.reason;
    EXPECT_THAT(v.reason, HasSubstr(s.reason)) << "step " << i;
    if (v.mapping == Mapping::kEndpointDependent) {
      EXPECT_FALSE(v.reflexive.has_value()) << i;
      EXPECT_FALSE(v.port_preserved) << i;
    }
    ++i;
  }
}

// seeds/004 on a Linux router: a peer's early packet took the port, its flow got 63042,
// and the router maps new flows like that newest one. Not a NAT turned hard.
TEST(FreshFlowsTest, AFreshFlowMappedWhereAPeerSawThePortIsTheCollisionNotRandomization) {
  FreshFlows f;
  f.SetTargets(kTargets);
  f.Sighted(E("198.51.100.20:63042"));
  const Observations o = Round("198.51.100.20:51820", E("198.51.100.14:3478"), "198.51.100.20:63042");
  const Verdict v = f.Settle(Classify(o), o);
  EXPECT_EQ(v.mapping, Mapping::kEndpointIndependent) << v.reason;
  EXPECT_EQ(v.reflexive, E("198.51.100.20:51820"));
  // Another port than the peer saw: randomization.
  const Observations r = Round("198.51.100.20:51820", E("198.51.100.14:3478"), "198.51.100.20:40001");
  EXPECT_EQ(f.Settle(Classify(r), r).mapping, Mapping::kEndpointDependent);
}

TEST(FreshFlowsTest, AHardNatEverywhereIsPlainHardAndLeavesNothingToCarry) {
  FreshFlows f;
  f.SetTargets(kTargets);
  Observations o = Round("198.51.100.20:51820", E("198.51.100.14:3478"), "198.51.100.20:1111");
  o.probes[1].mapped = E("198.51.100.20:2222");  // the old flows differ among themselves too
  Verdict v = f.Settle(Classify(o), o);
  EXPECT_EQ(v.mapping, Mapping::kEndpointDependent);
  EXPECT_THAT(v.reason, HasSubstr("differs per destination"));
  const Observations easy = Round("198.51.100.20:51820");
  EXPECT_EQ(f.Settle(Classify(easy), easy).mapping, Mapping::kEndpointIndependent);
}

TEST(FreshFlowsTest, NoNatAnyMoreForgetsWhatFreshFlowsShowed) {
  FreshFlows f;
  f.SetTargets(kTargets);
  const Observations hard = Round("198.51.100.20:51820", E("198.51.100.14:3478"), "198.51.100.20:40312");
  ASSERT_EQ(f.Settle(Classify(hard), hard).mapping, Mapping::kEndpointDependent);
  const Observations public_ip = Round("10.1.0.2:51820");
  EXPECT_EQ(f.Settle(Classify(public_ip), public_ip).mapping, Mapping::kNone);
  const Observations easy = Round("198.51.100.20:51820");
  EXPECT_EQ(f.Settle(Classify(easy), easy).mapping, Mapping::kEndpointIndependent);
}

}  // namespace
}  // namespace weft::nat
