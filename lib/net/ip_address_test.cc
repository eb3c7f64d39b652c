#include "lib/net/ip_address.h"
#include "lib/net/endpoint.h"

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::net {
namespace {

using ::weft::testing::StatusIs;

TEST(IpAddressTest, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddress::Parse("10.244.1.7");
  WEFT_ASSERT_OK(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->ToString(), "10.244.1.7");
  auto v6 = IpAddress::Parse("fd00:10:244::1");
  WEFT_ASSERT_OK(v6);
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->ToString(), "fd00:10:244::1");
  EXPECT_THAT(IpAddress::Parse("10.0.0.256"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IpAddress::Parse(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IpAddressTest, PlusCarriesAcrossBytesAndWraps) {
  EXPECT_EQ(IpAddress::Parse("10.0.0.255")->Plus(1).ToString(), "10.0.1.0");
  EXPECT_EQ(IpAddress::Parse("255.255.255.255")->Plus(1).ToString(), "0.0.0.0");
  EXPECT_EQ(IpAddress::Parse("fd00::ffff")->Plus(1).ToString(), "fd00::1:0");
  EXPECT_EQ(IpAddress::Parse("10.0.0.0")->Plus(65536 + 3).ToString(), "10.1.0.3");
}

TEST(IpAddressTest, PlusPowerOfTwoStepsByBlocks) {
  EXPECT_EQ(IpAddress::Parse("10.244.0.0")->PlusPowerOfTwo(8).ToString(), "10.244.1.0");
  EXPECT_EQ(IpAddress::Parse("10.244.255.0")->PlusPowerOfTwo(8).ToString(), "10.245.0.0");
  EXPECT_EQ(IpAddress::Parse("fd00:10:244::")->PlusPowerOfTwo(64).ToString(), "fd00:10:244:1::");
  EXPECT_EQ(IpAddress::Parse("10.0.0.0")->PlusPowerOfTwo(0).ToString(), "10.0.0.1");
}

TEST(IpPrefixTest, FirstLastContains) {
  auto p = IpPrefix::Parse("10.244.1.0/24");
  WEFT_ASSERT_OK(p);
  EXPECT_EQ(p->First().ToString(), "10.244.1.0");
  EXPECT_EQ(p->Last().ToString(), "10.244.1.255");
  EXPECT_TRUE(p->Contains(*IpAddress::Parse("10.244.1.9")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("10.244.2.9")));
  EXPECT_FALSE(p->Contains(*IpAddress::Parse("fd00::1")));
  auto p6 = IpPrefix::Parse("fd00:1::/64");
  WEFT_ASSERT_OK(p6);
  EXPECT_EQ(p6->Last().ToString(), "fd00:1::ffff:ffff:ffff:ffff");
  auto odd = IpPrefix::Parse("10.1.2.3/13");
  WEFT_ASSERT_OK(odd);
  EXPECT_EQ(odd->First().ToString(), "10.0.0.0");
  EXPECT_EQ(odd->Last().ToString(), "10.7.255.255");
}

TEST(IpPrefixTest, CoversAndOverlaps) {
  const IpPrefix cluster = *IpPrefix::Parse("10.244.0.0/16");
  const IpPrefix node = *IpPrefix::Parse("10.244.1.0/24");
  const IpPrefix half = *IpPrefix::Parse("0.0.0.0/1");
  EXPECT_TRUE(cluster.Covers(node));
  EXPECT_FALSE(node.Covers(cluster));
  EXPECT_TRUE(cluster.Covers(cluster));
  EXPECT_TRUE(node.Overlaps(cluster));
  EXPECT_TRUE(cluster.Overlaps(node));
  EXPECT_TRUE(half.Overlaps(node));
  EXPECT_FALSE(IpPrefix::Parse("128.0.0.0/1")->Overlaps(node));
  EXPECT_FALSE(node.Overlaps(*IpPrefix::Parse("10.244.2.0/24")));
  EXPECT_FALSE(node.Overlaps(*IpPrefix::Parse("::/0")));
}

TEST(IpPrefixTest, RejectsBadCidrs) {
  struct Case {
    const char* text;
  } cases[] = {{"10.0.0.0"}, {"10.0.0.0/33"}, {"10.0.0.0/-1"}, {"10.0.0.0/"},
               {"fd00::/129"}, {"x/24"}, {"10.0.0.0/2a"}, {"10.0.0.0/0024"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(IpPrefix::Parse(c.text), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(IpPrefix::ParseNetwork("10.244.1.1/24"),
              StatusIs(absl::StatusCode::kInvalidArgument, "did you mean 10.244.1.0/24"));
  WEFT_EXPECT_OK(IpPrefix::ParseNetwork("10.244.1.0/24"));
}

TEST(EndpointTest, ParsesAndFormatsBothFamilies) {
  for (const char* text : {"192.0.2.1:51820", "[2001:db8::1]:3478", "0.0.0.0:0"}) {
    SCOPED_TRACE(text);
    auto e = Endpoint::Parse(text);
    WEFT_ASSERT_OK(e);
    EXPECT_EQ(e->ToString(), text);
  }
  for (const char* text : {"192.0.2.1", "2001:db8::1:3478", "[2001:db8::1]3478", "1.2.3.4:65536",
                           "1.2.3.4:", "[::1]:x", ":80"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(Endpoint::Parse(text).ok());
  }
}

TEST(MacAddressTest, Formats) {
  EXPECT_EQ((MacAddress{{0x0a, 0, 0xff, 1, 2, 3}}).ToString(), "0a:00:ff:01:02:03");
}

}  // namespace
}  // namespace weft::net

namespace weft::net {
namespace {

TEST(EndpointSockaddr, RoundTripsIpv4) {
  const Endpoint e = *Endpoint::Parse("198.51.100.7:51820");
  const sockaddr_in a = ToSockaddrV4(e);
  EXPECT_EQ(a.sin_family, AF_INET);
  EXPECT_EQ(ntohs(a.sin_port), 51820);
  EXPECT_EQ(FromSockaddrV4(a), e);
  EXPECT_EQ(LoopbackV4(9).ToString(), "127.0.0.1:9");
}

TEST(EndpointSockaddr, RoundTripsEitherFamilyAndRefusesShortOrForeignOnes) {
  for (const char* text : {"198.51.100.7:51820", "[2001:db8:2::2]:51820"}) {
    const Endpoint e = *Endpoint::Parse(text);
    sockaddr_storage s;
    const socklen_t len = ToSockaddr(e, &s);
    EXPECT_EQ(len, e.ip.is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)) << text;
    EXPECT_EQ(FromSockaddr(&s, len), e) << text;
    EXPECT_EQ(FromSockaddr(&s, len - 1), std::nullopt) << text;
  }
  sockaddr_storage unix_family{};
  unix_family.ss_family = AF_UNIX;
  EXPECT_EQ(FromSockaddr(&unix_family, sizeof(unix_family)), std::nullopt);
}

}  // namespace
}  // namespace weft::net
