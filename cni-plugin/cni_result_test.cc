#include "cni-plugin/cni_result.h"

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::cni {
namespace {

using nlohmann::json;

CniResult Sample() {
  CniResult r;
  r.interfaces.push_back({"weft0123456789a", {{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}}, 1420, ""});
  r.interfaces.push_back({"eth0", {{0x0a, 1, 2, 3, 4, 5}}, 1420, "/var/run/netns/p1"});
  r.ips.push_back({*net::IpPrefix::Parse("10.244.1.2/32"), *net::IpAddress::Parse("169.254.1.1"), 1});
  r.routes.push_back({net::IpPrefix::Default(net::Family::kV4), *net::IpAddress::Parse("169.254.1.1")});
  return r;
}

TEST(CniResultTest, Encodes100) {
  json j = EncodeResult(Sample(), "1.0.0", std::nullopt);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/var/run/netns/p1");
  EXPECT_FALSE(j["interfaces"][1].contains("mtu"));
  EXPECT_EQ(j["ips"][0]["address"], "10.244.1.2/32");
  EXPECT_EQ(j["ips"][0]["interface"], 1);
  EXPECT_FALSE(j["ips"][0].contains("version"));
  EXPECT_EQ(j["routes"][0]["dst"], "0.0.0.0/0");
}

TEST(CniResultTest, OlderVersionsCarryIpVersionNewerCarryMtu) {
  EXPECT_EQ(EncodeResult(Sample(), "0.4.0", std::nullopt)["ips"][0]["version"], "4");
  EXPECT_EQ(EncodeResult(Sample(), "1.1.0", std::nullopt)["interfaces"][1]["mtu"], 1420);
}

TEST(CniResultTest, AppendsToAPreviousResultAndShiftsIndexes) {
  json prev = json::parse(R"({"cniVersion":"1.0.0","interfaces":[{"name":"x"}],"ips":[],"dns":{"nameservers":["10.96.0.10"]}})");
  json j = EncodeResult(Sample(), "1.0.0", prev);
  EXPECT_EQ(j["interfaces"].size(), 3u);
  EXPECT_EQ(j["ips"][0]["interface"], 2);
  EXPECT_EQ(j["dns"]["nameservers"][0], "10.96.0.10");
}

TEST(CniResultTest, PodAddressesComeFromTheSandboxInterface) {
  json j = EncodeResult(Sample(), "1.0.0", std::nullopt);
  auto addrs = PodAddressesFromResult(j, "eth0");
  WEFT_ASSERT_OK(addrs);
  ASSERT_EQ(addrs->size(), 1u);
  EXPECT_EQ((*addrs)[0].ToString(), "10.244.1.2/32");
  EXPECT_TRUE(PodAddressesFromResult(j, "net1")->empty());
  EXPECT_FALSE(PodAddressesFromResult(json::parse(R"({"interfaces":[],"ips":[{"address":"1.2.3.4/32","interface":5}]})"), "eth0").ok());
  EXPECT_FALSE(PodAddressesFromResult(json::parse(R"({"ips":[]})"), "eth0").ok());
}

TEST(CniResultTest, ErrorJson) {
  json e = EncodeError("1.0.0", 7, "bad CIDR");
  EXPECT_EQ(e["code"], 7);
  EXPECT_EQ(e["msg"], "invalid network config");
  EXPECT_EQ(e["details"], "bad CIDR");
}

}  // namespace
}  // namespace weft::cni
