#include "controller/endpoint_store.h"

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::controller {
namespace {

v1::NodeInfo Node(const std::string& name, uint32_t port = 51820) {
  v1::NodeInfo n;
  n.set_name(name);
  n.add_pod_cidrs("10.244.1.0/24");
  auto* c = n.add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip("198.51.100.21");
  c->mutable_endpoint()->set_port(port);
  return n;
}

TEST(EndpointStoreTest, VersionsGrowOnlyOnRealChanges) {
  EndpointStore s;
  EXPECT_EQ(s.Upsert(Node("a")), 1u);
  EXPECT_EQ(s.Upsert(Node("a")), 1u) << "an identical report is not a change";
  EXPECT_EQ(s.Upsert(Node("a", 40000)), 2u);
  EXPECT_EQ(s.Upsert(Node("b")), 3u);
  EXPECT_EQ(*s.Remove("a"), 4u);
  EXPECT_THAT(s.Remove("a"), testing::StatusIs(absl::StatusCode::kNotFound));
  auto snap = s.Snapshot();
  EXPECT_EQ(snap.version(), 4u);
  ASSERT_EQ(snap.nodes_size(), 1);
  EXPECT_EQ(snap.nodes(0).name(), "b");
}

TEST(EndpointStoreTest, ResumeGetsOnlyWhatWasMissed) {
  EndpointStore s;
  for (int i = 0; i < 5; ++i) s.Upsert(Node("n" + std::to_string(i)));
  auto d = s.DeltasSince(3);
  WEFT_ASSERT_OK(d);
  ASSERT_TRUE(d->has_value());
  ASSERT_EQ((*d)->size(), 2u);
  EXPECT_EQ((**d)[0].version(), 4u);
  EXPECT_EQ((**d)[1].upserted(0).name(), "n4");
  EXPECT_TRUE((*s.DeltasSince(5))->empty()) << "up to date: nothing to send";
}

TEST(EndpointStoreTest, TooOldResumeGetsASnapshotAndAFutureOneIsRefused) {
  EndpointStore s(/*max_log=*/3);
  for (int i = 0; i < 10; ++i) s.Upsert(Node("n" + std::to_string(i)));
  auto old = s.DeltasSince(2);
  WEFT_ASSERT_OK(old);
  EXPECT_FALSE(old->has_value()) << "the log no longer reaches back to version 2";
  EXPECT_TRUE(s.DeltasSince(7)->has_value());
  EXPECT_THAT(s.DeltasSince(11), testing::StatusIs(absl::StatusCode::kInvalidArgument, "newer than"));
}

}  // namespace
}  // namespace weft::controller
