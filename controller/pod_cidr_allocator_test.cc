#include "controller/pod_cidr_allocator.h"

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::controller {
namespace {

TEST(PodCidrAllocatorTest, OneBlockPerNodeStableAndRequested) {
  auto a = PodCidrAllocator::Create(*net::IpPrefix::Parse("10.244.0.0/16"), 24);
  WEFT_ASSERT_OK(a);
  EXPECT_EQ(a->Assign("n1", {})->ToString(), "10.244.0.0/24");
  EXPECT_EQ(a->Assign("n2", {})->ToString(), "10.244.1.0/24");
  EXPECT_EQ(a->Assign("n1", {})->ToString(), "10.244.0.0/24") << "stable";
  // After a controller restart, a node keeps what it had.
  EXPECT_EQ(a->Assign("n3", {"10.244.7.0/24"})->ToString(), "10.244.7.0/24");
  // A taken, foreign or malformed request falls back to the first free block.
  EXPECT_EQ(a->Assign("n4", {"10.244.7.0/24"})->ToString(), "10.244.2.0/24");
  EXPECT_EQ(a->Assign("n5", {"192.0.2.0/24", "junk"})->ToString(), "10.244.3.0/24");
  a->Release("n2");
  EXPECT_EQ(a->Assign("n6", {})->ToString(), "10.244.1.0/24");
}

TEST(PodCidrAllocatorTest, ExhaustionAndBadShapes) {
  auto a = PodCidrAllocator::Create(*net::IpPrefix::Parse("10.0.0.0/23"), 24);
  WEFT_ASSERT_OK(a->Assign("a", {}));
  WEFT_ASSERT_OK(a->Assign("b", {}));
  EXPECT_THAT(a->Assign("c", {}), testing::StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(PodCidrAllocator::Create(*net::IpPrefix::Parse("10.0.0.0/24"), 24).ok());
}

}  // namespace
}  // namespace weft::controller
