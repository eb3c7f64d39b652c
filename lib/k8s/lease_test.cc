#include "lib/k8s/lease.h"

#include <gtest/gtest.h>

namespace weft::k8s {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

TEST(Lease, RoundTripsTheWireFormat) {
  LeaseSpec s{.holder = "controller-a", .duration_seconds = 15, .acquire_time = kT0,
              .renew_time = kT0 + absl::Microseconds(1500), .transitions = 3};
  nlohmann::json lease = {{"spec", LeaseSpecJson(s)}};
  EXPECT_EQ(lease["spec"]["renewTime"], "2027-01-15T08:00:00.001500Z");
  auto back = LeaseSpecOf(lease);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->holder, "controller-a");
  EXPECT_EQ(back->renew_time, s.renew_time);
  EXPECT_EQ(back->transitions, 3);
  EXPECT_FALSE(LeaseSpecOf({{"spec", {{"renewTime", "yesterday"}}}}).ok());
  EXPECT_FALSE(LeaseSpecOf({{"spec", {{"leaseDurationSeconds", "15"}}}}).ok());
  EXPECT_TRUE(LeaseSpecOf(nlohmann::json::object()).ok());  // a Lease without spec: free
}

TEST(Lease, OnlyTheHolderMayWriteUntilItExpires) {
  LeaseSpec s{.holder = "a", .duration_seconds = 15, .acquire_time = kT0, .renew_time = kT0};
  EXPECT_TRUE(MayClaim(s, "a", kT0 + absl::Seconds(1)));
  EXPECT_FALSE(MayClaim(s, "b", kT0 + absl::Seconds(14)));
  EXPECT_TRUE(MayClaim(s, "b", kT0 + absl::Seconds(15)));
  s.holder = "";  // released
  EXPECT_TRUE(MayClaim(s, "b", kT0));
}

TEST(Lease, AClockAheadCannotExtendTheClaim) {
  LeaseSpec s{.holder = "a", .duration_seconds = 15, .renew_time = kT0 + absl::Hours(1)};
  EXPECT_EQ(LeaseExpiry(s, kT0), kT0 + absl::Seconds(15));
}

TEST(Lease, ClaimCountsTransitionsOnlyOnAChangeOfHolder) {
  LeaseSpec first = Claim({}, "a", kT0, 15);
  EXPECT_EQ(first.holder, "a");
  EXPECT_EQ(first.transitions, 0);
  LeaseSpec renewed = Claim(first, "a", kT0 + absl::Seconds(2), 15);
  EXPECT_EQ(renewed.transitions, 0);
  EXPECT_EQ(renewed.acquire_time, kT0);
  EXPECT_EQ(renewed.renew_time, kT0 + absl::Seconds(2));
  LeaseSpec taken = Claim(renewed, "b", kT0 + absl::Seconds(20), 15);
  EXPECT_EQ(taken.transitions, 1);
  EXPECT_EQ(taken.acquire_time, kT0 + absl::Seconds(20));
}

}  // namespace
}  // namespace weft::k8s
