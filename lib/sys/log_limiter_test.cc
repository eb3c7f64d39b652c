#include "lib/sys/log_limiter.h"

#include "gtest/gtest.h"

namespace weft::sys {
namespace {

TEST(LogLimiterTest, ABurstThenOneLinePerIntervalSayingHowManyWereHeldBack) {
  LogLimiter l(3, 10000);
  int said = 0;
  for (int i = 0; i < 5000; ++i) {  // 5,000 joins in one second
    if (l.Line("joined", "node joined", i / 5)) ++said;
  }
  EXPECT_EQ(said, 3);
  auto next = l.Line("joined", "node n5001 joined", 11000);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, "node n5001 joined (and 4997 more like it)");
  EXPECT_FALSE(l.Line("joined", "again", 11001).has_value());
}

TEST(LogLimiterTest, KindsAreCountedApart) {
  LogLimiter l(1, 10000);
  EXPECT_TRUE(l.Line("bad token", "a", 0).has_value());
  EXPECT_FALSE(l.Line("bad token", "a", 1).has_value());
  EXPECT_TRUE(l.Line("standby", "b", 2).has_value());
}

}  // namespace
}  // namespace weft::sys
