// Relayed paths in the NAT lab (root): pairs the strategy table relays (hard <-> hard,
// hard <-> port-restricted easy) reach each other through a TURN relay on the internet
// host, with weft-relay and with coturn as the relay. Agents allocate with credentials
// the controller derives from the relays' shared secret.
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

using nlohmann::json;

class RelayLabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RelayLabTest, RelayedPairsReachEachOther) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  if (system("command -v turnserver wireguard-go >/dev/null") != 0) GTEST_SKIP() << "coturn or wireguard-go missing";
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "dc", "nat": "none", "nodes": ["d1"]},
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "natgw2", "nat": "hard", "nodes": ["h2"]},
      {"name": "home", "nat": "easy", "nodes": ["e1"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, GetParam()};
  auto c = LabCluster::Create(*spec, bin);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  // Every pair the table relays, both ways; and a direct pair still direct.
  const std::vector<std::pair<std::string, std::string>> relayed = {{"h1", "h2"}, {"h2", "h1"}, {"h1", "e1"}, {"e1", "h2"}};
  for (const auto& [a, b] : relayed) {
    EXPECT_TRUE(cluster.PodPing(a, cluster.PodIp(b), 15)) << a << " -> " << b << "\n" << cluster.AgentLog(a);
  }
  EXPECT_TRUE(cluster.PodPing("h1", cluster.PodIp("d1"), 10));
  json s = json::parse(cluster.ControllerStatus(), nullptr, false);
  ASSERT_TRUE(s.is_object());
  for (const auto& n : s["nodes"]) {
    if (n["name"] != "h1") continue;
    for (const auto& p : n["peers"]) {
      if (p["peer"] == "h2") {
        EXPECT_EQ(p["path"], "relay") << p.dump();
      }
      if (p["peer"] == "d1") {
        EXPECT_EQ(p["path"], "direct") << p.dump();
      }
    }
  }
  const std::string log = cluster.AgentLog("h1");
  EXPECT_NE(log.find("relay 198.51.100.200:3478: allocated 198.51.100.200:"), std::string::npos) << log;
  EXPECT_NE(log.find("peer h2: relay"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Relays, RelayLabTest, ::testing::Values("weft", "coturn"),
                         [](const auto& info) { return info.param == "weft" ? std::string("WeftRelay") : std::string("Coturn"); });

}  // namespace
}  // namespace weft::lab
