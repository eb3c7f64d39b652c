#include "node-agent/egress.h"
#include "node-agent/node_files.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"
#include "nlohmann/json.hpp"

namespace weft::agent {
namespace {

class NodeFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/weft-agent-test-XXXXXX";
    dir_ = mkdtemp(t);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(NodeFilesTest, KeyIsCreatedOnceWith0600) {
  auto k1 = LoadOrCreateKey(dir_ + "/wg.key");
  WEFT_ASSERT_OK(k1);
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/wg.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = LoadOrCreateKey(dir_ + "/wg.key");
  WEFT_ASSERT_OK(k2);
  EXPECT_EQ(*k1, *k2) << "the key is kept";
  chmod((dir_ + "/wg.key").c_str(), 0644);
  EXPECT_THAT(LoadOrCreateKey(dir_ + "/wg.key"), testing::StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(NodeFilesTest, ConflistIsWhatWeftCniReads) {
  auto j = nlohmann::json::parse(CniConflist({"10.244.1.0/24"}, 1420, "/run/weft/cni"));
  EXPECT_EQ(j["plugins"][0]["type"], "weft");
  EXPECT_EQ(j["plugins"][0]["podCIDRs"][0], "10.244.1.0/24");
  EXPECT_EQ(j["plugins"][0]["mtu"], 1420);
  EXPECT_EQ(j["plugins"][1]["type"], "portmap");
  // containerd 1.6/1.7 (libcni 1.1) refuse 1.1.0; tests/runtime/containerd_cni_test.sh.
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["cniVersions"], nlohmann::json({"1.0.0", "1.1.0"}));
}

TEST(EgressTest, MasqueradesOnlyTrafficLeavingTheCluster) {
  const std::string r = *EgressRuleset({*net::IpPrefix::Parse("10.244.1.0/24"), *net::IpPrefix::Parse("fd00:10:244:1::/64")},
                                       {*net::IpPrefix::Parse("10.244.0.0/16"), *net::IpPrefix::Parse("fd00:10:244::/56")},
                                       "weft0", 51820);
  EXPECT_NE(r.find("table inet weft {"), std::string::npos) << r;
  EXPECT_NE(r.find("    ip saddr 10.244.1.0/24 ip daddr != { 10.244.0.0/16 } masquerade\n"), std::string::npos) << r;
  EXPECT_NE(r.find("    ip6 saddr fd00:10:244:1::/64 ip6 daddr != { fd00:10:244::/56 } masquerade\n"), std::string::npos)
      << r;
  EXPECT_NE(r.find("type nat hook postrouting"), std::string::npos);
}

TEST(EgressTest, ClampsTheMssOfSynsIntoTheTunnelToTheRoute) {
  const std::string r = *EgressRuleset({*net::IpPrefix::Parse("10.244.1.0/24")}, {}, "wg7", 51820);
  EXPECT_NE(r.find("oifname \"wg7\" tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu"), std::string::npos)
      << r;
}

TEST(EgressTest, ClearsDfOnlyOnWireGuardsDatagramsOfTheFragmentBand) {
  const std::string r = *EgressRuleset({*net::IpPrefix::Parse("10.244.1.0/24")}, {}, "wg7", 51999);
  // Inner 1217-1280 bytes, padded to 16, plus WireGuard's 32, UDP's 8 and IPv4's 20.
  EXPECT_NE(r.find("type filter hook output priority mangle;"), std::string::npos) << r;
  EXPECT_NE(r.find("udp sport 51999 ip frag-off 0x4000 meta length 1277-1340 counter ip frag-off set 0"), std::string::npos) << r;
}

TEST(EgressTest, NoTextBecomesRuleSyntax) {
  EXPECT_FALSE(EgressRuleset({}, {}, "wg0\" ; flush ruleset ; \"", 51820).ok());
  EXPECT_FALSE(EgressRuleset({}, {}, "", 51820).ok());
  EXPECT_FALSE(EgressRuleset({}, {}, "a-name-far-too-long", 51820).ok());
}

}  // namespace
}  // namespace weft::agent
