#include "node-agent/host_candidates.h"

#include <linux/rtnetlink.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

net::AddrInfo Addr(int ifindex, const std::string& cidr, uint8_t scope = RT_SCOPE_UNIVERSE) {
  return {.ifindex = ifindex, .prefix = *net::IpPrefix::Parse(cidr), .scope = scope};
}

TEST(HostCandidatesTest, UplinkFirstBoundedNoTunnelNoLoopback) {
  std::vector<net::AddrInfo> addrs = {Addr(1, "127.0.0.1/8", RT_SCOPE_HOST), Addr(2, "10.0.0.5/24"),
                                      Addr(3, "192.0.2.10/24"), Addr(4, "10.244.1.1/32"), Addr(3, "fd00::1/64")};
  // kube-proxy IPVS: every Service address on kube-ipvs0 (ifindex 5).
  for (int i = 0; i < 300; ++i) addrs.push_back(Addr(5, "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250) + "/32"));
  const auto c = HostCandidates(addrs, /*uplink=*/3, /*wg=*/4);
  ASSERT_EQ(c.size(), kMaxHostCandidates);
  EXPECT_EQ(c[0].ToString(), "192.0.2.10");  // the uplink's
  EXPECT_EQ(c[1].ToString(), "10.0.0.5");
  for (const auto& a : c) EXPECT_NE(a.ToString(), "10.244.1.1");
  for (const auto& a : c) EXPECT_NE(a.ToString(), "fd00::1") << "a ULA reaches no other site";
}

TEST(HostCandidatesTest, OneGlobalIpv6AddressHasItsPlaceEvenAmongManyIpv4Ones) {
  std::vector<net::AddrInfo> addrs = {Addr(3, "192.0.2.10/24"), Addr(3, "fe80::1/64", RT_SCOPE_LINK),
                                      Addr(3, "fd00::1/64"), Addr(3, "2001:db8:2::2/64"), Addr(3, "2001:db8:2::3/64"),
                                      Addr(4, "2001:db8:9::1/64")};
  for (int i = 0; i < 20; ++i) addrs.push_back(Addr(5, "10.96.0." + std::to_string(i) + "/32"));
  const auto c = HostCandidates(addrs, /*uplink=*/3, /*wg=*/4);
  ASSERT_EQ(c.size(), kMaxHostCandidates);
  EXPECT_EQ(c[0].ToString(), "192.0.2.10");
  EXPECT_EQ(c.back().ToString(), "2001:db8:2::2");
  EXPECT_EQ(std::count_if(c.begin(), c.end(), [](const net::IpAddress& a) { return !a.is_v4(); }), 1);
}

}  // namespace
}  // namespace weft::agent
