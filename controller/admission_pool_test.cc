#include "controller/admission_pool.h"

#include <atomic>
#include <chrono>
#include <future>

#include "gtest/gtest.h"

namespace weft::controller {
namespace {

TEST(AdmissionPoolTest, ALaneFullOfWorkDoesNotDelayAnother) {
  // Declared before the pool: its tasks may still run while it is destroyed.
  std::atomic<int> flood_done{0};
  std::atomic<int> flood_before_honest{-1};
  AdmissionPool pool(1, 1024, 64);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  // The one thread is busy; the flood's lane fills up (64), the rest is refused at once.
  ASSERT_TRUE(pool.TrySubmit("blocker", [gate] { gate.wait(); }));
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    accepted += pool.TrySubmit("flood", [&flood_done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ++flood_done;
    }) ? 1 : 0;
  }
  EXPECT_EQ(accepted, 64);
  ASSERT_TRUE(pool.TrySubmit("honest", [&] { flood_before_honest = flood_done.load(); }));
  release.set_value();
  for (int i = 0; i < 500 && flood_before_honest.load() < 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Round-robin: at most one of the flood's tasks ran before the honest one.
  EXPECT_LE(flood_before_honest.load(), 1);
  EXPECT_GE(flood_before_honest.load(), 0);
}

TEST(AdmissionPoolTest, TheTotalIsBounded) {
  AdmissionPool pool(1, 3, 64);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  ASSERT_TRUE(pool.TrySubmit("a", [gate] { gate.wait(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the thread took it
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += pool.TrySubmit("lane" + std::to_string(i), [] {}) ? 1 : 0;
  EXPECT_EQ(accepted, 3);
  release.set_value();
}

}  // namespace
}  // namespace weft::controller
