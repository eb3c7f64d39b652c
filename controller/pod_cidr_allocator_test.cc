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

// Stored state is read as it is: each family's allocator takes the node's block of its
// family if it fits and is free, and nothing else (no fresh block for a bad entry).
TEST(PodCidrAllocatorTest, RestoreBlocksTakesOnlyWhatFits) {
  std::vector<PodCidrAllocator> pods = {*PodCidrAllocator::Create(*net::IpPrefix::Parse("10.244.0.0/16"), 24),
                                        *PodCidrAllocator::Create(*net::IpPrefix::Parse("fd00:10:244::/56"), 64)};
  RestoreBlocks(pods, "a", "10.244.7.0/24,fd00:10:244:7::/64");
  RestoreBlocks(pods, "b", "10.244.7.0/24,junk,fd00:10:244:8::/64");  // its IPv4 block is a's
  RestoreBlocks(pods, "c", "192.0.2.0/24,fd00:10:244:9::/80");        // neither fits
  RestoreBlocks(pods, "d", "");
  EXPECT_EQ(pods[0].assignments().at("a").ToString(), "10.244.7.0/24");
  EXPECT_EQ(pods[1].assignments().at("a").ToString(), "fd00:10:244:7::/64");
  EXPECT_FALSE(pods[0].assignments().contains("b"));
  EXPECT_EQ(pods[1].assignments().at("b").ToString(), "fd00:10:244:8::/64");
  EXPECT_FALSE(pods[0].assignments().contains("c"));
  EXPECT_FALSE(pods[1].assignments().contains("c"));
  EXPECT_FALSE(pods[0].assignments().contains("d"));
}

}  // namespace
}  // namespace weft::controller
