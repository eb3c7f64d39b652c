#include "lib/net/mtu_probe.h"

#include "gtest/gtest.h"

namespace weft::net {
namespace {

TEST(MtuProbeTest, ProbeFillsTheDatagramItClaims) {
  const std::vector<uint8_t> p = BuildMtuProbe(7, 1420);
  EXPECT_EQ(p.size(), 1420u - kMtuProbeHeaders);
  auto m = ParseMtuProbe(p);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, MtuProbe::Type::kProbe);
  EXPECT_EQ(m->seq, 7);
  EXPECT_EQ(m->size, 1420);
}

TEST(MtuProbeTest, AckIsSmallAndCarriesTheReceivedSize) {
  const std::vector<uint8_t> a = BuildMtuAck(65535, 1392);
  EXPECT_EQ(a.size(), 10u);
  auto m = ParseMtuProbe(a);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, MtuProbe::Type::kAck);
  EXPECT_EQ(m->seq, 65535);
  EXPECT_EQ(m->size, 1392);
}

TEST(MtuProbeTest, TinySizesAreRaisedToTheHeader) {
  EXPECT_EQ(BuildMtuProbe(1, 0).size(), static_cast<size_t>(kMtuProbeMinSize - kMtuProbeHeaders));
  EXPECT_TRUE(ParseMtuProbe(BuildMtuProbe(1, 0)).has_value());
}

TEST(MtuProbeTest, RejectsWhatIsNotAProbe) {
  std::vector<uint8_t> p = BuildMtuProbe(1, 1280);
  EXPECT_FALSE(ParseMtuProbe(absl::MakeConstSpan(p.data(), 9)).has_value());        // truncated header
  EXPECT_FALSE(ParseMtuProbe(absl::MakeConstSpan(p.data(), p.size() - 1)).has_value());  // shorter than it claims
  std::vector<uint8_t> bad = p;
  bad[0] = 'X';
  EXPECT_FALSE(ParseMtuProbe(bad).has_value());  // magic
  bad = p;
  bad[4] = 2;
  EXPECT_FALSE(ParseMtuProbe(bad).has_value());  // version
  bad = p;
  bad[5] = 3;
  EXPECT_FALSE(ParseMtuProbe(bad).has_value());  // type
  std::vector<uint8_t> ack = BuildMtuAck(1, 1280);
  ack.push_back(0);
  EXPECT_FALSE(ParseMtuProbe(ack).has_value());  // an ack is exactly its header
  EXPECT_FALSE(ParseMtuProbe(BuildMtuAck(1, 12)).has_value());  // a size no probe can have
}

}  // namespace
}  // namespace weft::net
