#include "lib/ipam/pool.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::ipam {
namespace {

using ::weft::testing::StatusIs;

net::IpPrefix Cidr(const char* s) { return *net::IpPrefix::Parse(s); }

TEST(PoolTest, SkipsNetworkNodeAndBroadcastAddresses) {
  Pool pool;
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto a = pool.Allocate(Cidr("10.0.0.0/29"), {absl::StrCat("c", i), "eth0"}, "", "");
    WEFT_ASSERT_OK(a);
    got.push_back(a->ip.ToString());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
  EXPECT_THAT(pool.Allocate(Cidr("10.0.0.0/29"), {"c9", "eth0"}, "", ""),
              StatusIs(absl::StatusCode::kResourceExhausted, "10.0.0.0/29"));
}

TEST(PoolTest, IdempotentPerAttachment) {
  Pool pool;
  auto a = pool.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "ns", "pod");
  auto b = pool.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "ns", "pod");
  WEFT_ASSERT_OK(a);
  WEFT_ASSERT_OK(b);
  EXPECT_EQ(a->ip, b->ip);
  auto other_if = pool.Allocate(Cidr("10.0.0.0/24"), {"c", "net1"}, "ns", "pod");
  EXPECT_NE(other_if->ip, a->ip);
  EXPECT_EQ(pool.allocations().size(), 2u);
}

TEST(PoolTest, RoundRobinDoesNotReuseAReleasedAddressAtOnce) {
  Pool pool;
  auto a = pool.Allocate(Cidr("10.0.0.0/24"), {"a", "eth0"}, "", "");
  EXPECT_EQ(pool.Release({"a", "eth0"}), 1);
  auto b = pool.Allocate(Cidr("10.0.0.0/24"), {"b", "eth0"}, "", "");
  EXPECT_NE(a->ip, b->ip);
}

TEST(PoolTest, WrapsAroundToFreedAddresses) {
  Pool pool;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.Allocate(Cidr("10.0.0.0/29"), {absl::StrCat("c", i), "e"}, "", "").ok());
  pool.Release({"c1", "e"});
  auto a = pool.Allocate(Cidr("10.0.0.0/29"), {"new", "e"}, "", "");
  WEFT_ASSERT_OK(a);
  EXPECT_EQ(a->ip.ToString(), "10.0.0.3");
}

TEST(PoolTest, DualStackGivesOneAddressPerFamily) {
  Pool pool;
  auto v4 = pool.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "", "");
  auto v6 = pool.Allocate(Cidr("fd00:0:0:1::/64"), {"c", "eth0"}, "", "");
  WEFT_ASSERT_OK(v6);
  EXPECT_EQ(v6->ip.ToString(), "fd00:0:0:1::2");
  EXPECT_EQ(pool.FindAll({"c", "eth0"}).size(), 2u);
  EXPECT_EQ(pool.Find({"c", "eth0"}, net::Family::kV6)->ip, v6->ip);
  EXPECT_EQ(pool.Release({"c", "eth0"}), 2);
}

TEST(PoolTest, ReleaseAllExceptKeepsOnlyValidAttachments) {
  Pool pool;
  for (const char* c : {"a", "b", "c"}) ASSERT_TRUE(pool.Allocate(Cidr("10.0.0.0/24"), {c, "eth0"}, "", "").ok());
  auto released = pool.ReleaseAllExcept({{"b", "eth0"}});
  EXPECT_EQ(released.size(), 2u);
  ASSERT_EQ(pool.allocations().size(), 1u);
  EXPECT_EQ(pool.allocations().begin()->second.owner.container_id, "b");
}

TEST(PoolTest, SerializeParseRoundTrip) {
  Pool pool;
  ASSERT_TRUE(pool.Allocate(Cidr("10.0.0.0/24"), {"abc", "eth0"}, "default", "web-1").ok());
  ASSERT_TRUE(pool.Allocate(Cidr("fd00::/64"), {"abc", "eth0"}, "", "").ok());
  auto back = Pool::Parse(pool.Serialize());
  WEFT_ASSERT_OK(back);
  EXPECT_EQ(back->Serialize(), pool.Serialize());
  auto a = back->Find({"abc", "eth0"}, net::Family::kV4);
  EXPECT_EQ(a->pod_namespace, "default");
  EXPECT_EQ(a->pod_name, "web-1");
  // The round-robin position survives too.
  auto next = back->Allocate(Cidr("10.0.0.0/24"), {"x", "eth0"}, "", "");
  EXPECT_EQ(next->ip.ToString(), "10.0.0.3");
}

TEST(PoolTest, AnyNameIsOneFieldAndRoundTrips) {
  Pool pool;
  const std::string names[] = {"my pod", "line\nbreak", "tab\there", "%41", "-", "caf\xc3\xa9", std::string(300, 'x'),
                               std::string("nul\0byte", 8), "ev il 10.0.0.9 x y - -"};
  int i = 0;
  for (const auto& n : names) {
    ASSERT_TRUE(pool.Allocate(Cidr("10.0.0.0/24"), {"c" + std::to_string(i++), "eth0"}, n, n).ok());
  }
  const std::string text = pool.Serialize();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + static_cast<long>(std::size(names))) << text;
  auto back = Pool::Parse(text);
  WEFT_ASSERT_OK(back);
  EXPECT_EQ(back->Serialize(), text);
  i = 0;
  for (const auto& n : names) {
    auto a = back->Find({"c" + std::to_string(i++), "eth0"}, net::Family::kV4);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->pod_name, n);
    EXPECT_EQ(a->pod_namespace, n);
  }
}

TEST(PoolTest, CorruptStoresAreDataLoss) {
  for (const char* text : {"garbage\n", "alloc 10.0.0.300 a b - -\n",
                           "alloc 10.0.0.2 a b - -\nalloc 10.0.0.2 c d - -\n", "frobnicate\n",
                           " \n", "alloc 10.0.0.2 a b -\n", "alloc 10.0.0.2 a b %4 -\n", "alloc 10.0.0.2 a b %zz -\n"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(Pool::Parse(text), StatusIs(absl::StatusCode::kDataLoss));
  }
  WEFT_EXPECT_OK(Pool::Parse(""));
}

}  // namespace
}  // namespace weft::ipam
