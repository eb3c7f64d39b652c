#include "lib/sys/token_bucket.h"

#include "gtest/gtest.h"

namespace weft::sys {
namespace {

TEST(TokenBucketTest, BurstThenRate) {
  TokenBucket b(10, 3);
  EXPECT_TRUE(b.Take(1000));
  EXPECT_TRUE(b.Take(1000));
  EXPECT_TRUE(b.Take(1000));
  EXPECT_FALSE(b.Take(1000));
  EXPECT_EQ(b.WaitMs(1000), 101);
  EXPECT_FALSE(b.Take(1050));
  EXPECT_TRUE(b.Take(1100));
  EXPECT_FALSE(b.Take(1100));
}

TEST(TokenBucketTest, RefillStopsAtBurstAndTimeNeverRunsBack) {
  TokenBucket b(1, 2);
  EXPECT_TRUE(b.Take(0));
  EXPECT_TRUE(b.Take(0));
  int taken = 0;
  for (int i = 0; i < 10; ++i) taken += b.Take(100000) ? 1 : 0;  // an hour idle: still 2
  EXPECT_EQ(taken, 2);
  EXPECT_FALSE(b.Take(50));  // a clock read out of order refills nothing
  EXPECT_EQ(b.WaitMs(100000), 1001);
}

}  // namespace
}  // namespace weft::sys
