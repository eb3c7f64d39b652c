#include "lib/api/reconnect_backoff.h"

#include <random>

#include "gtest/gtest.h"

namespace weft::api {
namespace {

using std::chrono::milliseconds;

TEST(ReconnectBackoffTest, DoublesToHalfASecondJittered) {
  ReconnectBackoff b;
  EXPECT_EQ(b.Next(milliseconds(1), false, 0), milliseconds(50));    // 100 ms, jittered to its half
  EXPECT_EQ(b.Next(milliseconds(1), false, 100), milliseconds(200));  // 200 ms at most
  EXPECT_EQ(b.Next(milliseconds(1), false, 0), milliseconds(200));    // 400 ms
  for (int i = 0; i < 10; ++i) EXPECT_LE(b.Next(milliseconds(1), false, 12345), milliseconds(500));
  EXPECT_EQ(b.Next(milliseconds(1), false, 0), milliseconds(250));
}

TEST(ReconnectBackoffTest, ASessionThatLastedStartsOver) {
  ReconnectBackoff b;
  for (int i = 0; i < 5; ++i) b.Next(milliseconds(1), false, 0);
  EXPECT_EQ(b.Next(milliseconds(60000), false, 0), milliseconds(50));
}

TEST(ReconnectBackoffTest, StandbyRefusalsRetryQuicklyForAWhile) {
  ReconnectBackoff b;
  for (int i = 0; i < ReconnectBackoff::kQuickStandbyRetries; ++i) {
    const auto w = b.Next(milliseconds(5), true, static_cast<uint32_t>(i * 7));
    EXPECT_GE(w, milliseconds(100));
    EXPECT_LE(w, milliseconds(200));
  }
  EXPECT_LE(b.Next(milliseconds(5), true, 0), milliseconds(500));  // then as after a failure
}

// A cluster's agents spread out: 5,000 first waits are not one instant.
TEST(ReconnectBackoffTest, AClusterSpreadsOut) {
  std::mt19937 rng(1);
  int64_t min = 1 << 30, max = 0;
  for (int i = 0; i < 5000; ++i) {
    ReconnectBackoff b;
    b.Next(milliseconds(60000), false, rng());
    const int64_t w = b.Next(milliseconds(1), false, rng()).count();  // the second wait: 100-200 ms
    min = std::min(min, w);
    max = std::max(max, w);
  }
  EXPECT_LE(min, 105);
  EXPECT_GE(max, 195);
}

}  // namespace
}  // namespace weft::api
