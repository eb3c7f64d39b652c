#include "cni-plugin/naming.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

TEST(NamingTest, HostVethNamesAreStableValidAndDistinct) {
  ipam::Attachment a{"3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755", "eth0"};
  std::string name = HostVethName(a);
  EXPECT_EQ(name.size(), 15u);  // IFNAMSIZ - 1
  EXPECT_EQ(name.substr(0, 4), "weft");
  EXPECT_EQ(name, HostVethName(a));
  EXPECT_TRUE(IsHostVethName(name));
  EXPECT_FALSE(IsHostVethName("weft0"));
  EXPECT_FALSE(IsHostVethName("eth0"));
  EXPECT_NE(name, HostVethName({a.container_id, "net1"}));
  std::set<std::string> names;
  for (int i = 0; i < 10000; ++i) names.insert(HostVethName({absl::StrCat("c", i), "eth0"}));
  EXPECT_EQ(names.size(), 10000u);
}

TEST(NamingTest, PodMacIsLocallyAdministeredUnicast) {
  net::MacAddress m = PodMac({"abc", "eth0"});
  EXPECT_EQ(m.bytes[0] & 0x01, 0);  // unicast
  EXPECT_EQ(m.bytes[0] & 0x02, 2);  // locally administered
  EXPECT_EQ(m, PodMac({"abc", "eth0"}));
}

TEST(NamingTest, AliasRoundTrips) {
  ipam::Attachment a{"abc.def-1", "eth0"};
  auto parsed = ParseHostVethAlias(HostVethAlias("weft", a));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->network, "weft");
  EXPECT_EQ(parsed->attachment, a);
  EXPECT_FALSE(ParseHostVethAlias("").has_value());
  EXPECT_FALSE(ParseHostVethAlias("other:weft:a:b").has_value());
  EXPECT_FALSE(ParseHostVethAlias("weft:n:a").has_value());
}

TEST(NamingTest, Gateways) {
  EXPECT_EQ(GatewayV4().ToString(), "169.254.1.1");
  EXPECT_EQ(GatewayV6().ToString(), "fe80::1");
}

}  // namespace
}  // namespace weft::cni
