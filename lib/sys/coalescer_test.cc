#include "lib/sys/coalescer.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace weft::sys {
namespace {

TEST(CoalescerTest, AnAskIsAnsweredByARun) {
  std::atomic<int> runs{0};
  Coalescer c([&](uint32_t) { ++runs; });
  c.Ask();
  ASSERT_TRUE(c.Drain());
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(c.runs(), 1u);
}

TEST(CoalescerTest, NoAskNoRun) {
  std::atomic<int> runs{0};
  {
    Coalescer c([&](uint32_t) { ++runs; });
    ASSERT_TRUE(c.Drain());
  }
  EXPECT_EQ(runs.load(), 0);
}

// A burst of asks while a run is under way (a report's N-1 directives arriving while the
// device is written) makes one more run, with every ask's flags.
TEST(CoalescerTest, ABurstDuringARunMakesOneMoreRun) {
  absl::Notification started, release;
  std::vector<uint32_t> seen;
  absl::Mutex mu;
  Coalescer c([&](uint32_t flags) {
    {
      absl::MutexLock l(&mu);
      seen.push_back(flags);
    }
    if (!started.HasBeenNotified()) {
      started.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
    }
  });
  c.Ask(1);
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (int i = 0; i < 4999; ++i) c.Ask(i == 10 ? 4 : 2);
  release.Notify();
  ASSERT_TRUE(c.Drain());
  absl::MutexLock l(&mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], 1u);
  EXPECT_EQ(seen[1], 6u);
}

// Asks from several threads at once: every one answered, by far fewer runs.
TEST(CoalescerTest, AsksFromManyThreadsAreAllAnswered) {
  std::atomic<int> runs{0};
  Coalescer c([&](uint32_t) {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  });
  std::vector<std::thread> askers;
  for (int t = 0; t < 4; ++t) {
    askers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) c.Ask();
    });
  }
  for (auto& t : askers) t.join();
  ASSERT_TRUE(c.Drain());
  EXPECT_GE(runs.load(), 1);
  EXPECT_LT(runs.load(), 2000);
}

TEST(CoalescerTest, DestroyedWhileAskedStopsWithoutHanging) {
  std::atomic<int> runs{0};
  auto c = std::make_unique<Coalescer>([&](uint32_t) {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  for (int i = 0; i < 10; ++i) c->Ask();
  c.reset();
  EXPECT_LE(runs.load(), 2);
}

}  // namespace
}  // namespace weft::sys
