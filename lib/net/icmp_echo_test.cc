#include "lib/net/icmp_echo.h"

#include "gtest/gtest.h"

namespace weft::net {
namespace {

// An IPv4 header from `src` in front of `icmp`.
std::vector<uint8_t> Ip(const std::vector<uint8_t>& icmp, const char* src = "10.244.1.1") {
  std::vector<uint8_t> p(20);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>((20 + icmp.size()) >> 8);
  p[3] = static_cast<uint8_t>(20 + icmp.size());
  p[8] = 64;
  p[9] = 1;
  auto a = *IpAddress::Parse(src);
  std::copy(a.bytes(), a.bytes() + 4, p.begin() + 12);
  p.insert(p.end(), icmp.begin(), icmp.end());
  return p;
}

// What the peer's kernel answers: the request with type 0 and the checksum fixed.
std::vector<uint8_t> AsReply(std::vector<uint8_t> m) {
  m[0] = 0;
  m[2] = m[3] = 0;
  const uint16_t c = InternetChecksum(m);
  m[2] = static_cast<uint8_t>(c >> 8);
  m[3] = static_cast<uint8_t>(c);
  return m;
}

TEST(IcmpEchoTest, RequestIsWellFormed) {
  std::vector<uint8_t> m = BuildEchoRequest(0xbeef, 7, 56);
  ASSERT_EQ(m.size(), 64u);
  EXPECT_EQ(m[0], 8);
  EXPECT_EQ(m[4], 0xbe);
  EXPECT_EQ(m[7], 7);
  EXPECT_EQ(InternetChecksum(m), 0);  // a valid checksum sums to zero
}

TEST(IcmpEchoTest, ReplyIsParsed) {
  auto r = ParseEchoReply(Ip(AsReply(BuildEchoRequest(0xbeef, 300, 1372))));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from.ToString(), "10.244.1.1");
  EXPECT_EQ(r->id, 0xbeef);
  EXPECT_EQ(r->seq, 300);
  EXPECT_EQ(r->payload_size, 1372u);
}

TEST(IcmpEchoTest, AnythingElseIsNot) {
  const std::vector<uint8_t> good = Ip(AsReply(BuildEchoRequest(1, 2, 8)));
  EXPECT_FALSE(ParseEchoReply(Ip(BuildEchoRequest(1, 2, 8))).has_value());  // a request
  std::vector<uint8_t> bad = good;
  bad.back() ^= 1;  // checksum no longer matches
  EXPECT_FALSE(ParseEchoReply(bad).has_value());
  bad = good;
  bad[9] = 17;  // UDP
  EXPECT_FALSE(ParseEchoReply(bad).has_value());
  bad = good;
  bad[3] += 1;  // claims more than there is
  EXPECT_FALSE(ParseEchoReply(bad).has_value());
  bad = good;
  bad[6] = 0x20;  // more fragments
  EXPECT_FALSE(ParseEchoReply(bad).has_value());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ParseEchoReply(absl::MakeConstSpan(good.data(), n)).has_value()) << n;
  }
}

TEST(IcmpEchoTest, Ipv6RequestAndReply) {
  std::vector<uint8_t> m = BuildEchoRequest6(0xbeef, 9, 16);
  ASSERT_EQ(m.size(), 24u);
  EXPECT_EQ(m[0], 128);
  EXPECT_EQ(m[2], 0);  // the kernel's to fill in
  EXPECT_EQ(m[3], 0);
  const IpAddress from = *IpAddress::Parse("fd00:10:244:2::1");
  EXPECT_FALSE(ParseEchoReply6(m, from).has_value()) << "a request";
  m[0] = 129;
  auto r = ParseEchoReply6(m, from);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, from);
  EXPECT_EQ(r->id, 0xbeef);
  EXPECT_EQ(r->seq, 9);
  EXPECT_EQ(r->payload_size, 16u);
  EXPECT_FALSE(ParseEchoReply6(m, *IpAddress::Parse("10.244.1.1")).has_value()) << "not from IPv6";
  for (size_t n = 0; n < 8; ++n) EXPECT_FALSE(ParseEchoReply6(absl::MakeConstSpan(m.data(), n), from).has_value()) << n;
}

}  // namespace
}  // namespace weft::net
