// Relayed paths in the NAT lab (root): pairs the strategy table relays (hard <-> hard,
// hard <-> port-restricted easy) reach each other through a TURN relay on the internet
// host, with weft-relay and with coturn as the relay. Agents allocate with credentials
// the controller derives from the relays' shared secret.
#include <chrono>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

using nlohmann::json;

// Pings `to`'s pod from `from`'s (and back, when `both_ways`) once a second until it is
// answered or `limit` passes; how long that took, nullopt if never.
std::optional<std::chrono::milliseconds> UntilPodsTalk(const LabCluster& cluster, const std::string& from,
                                                       const std::string& to, std::chrono::seconds limit,
                                                       bool both_ways = false) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < limit) {
    if (cluster.PodPing(from, cluster.PodIp(to), 1) && (!both_ways || cluster.PodPing(to, cluster.PodIp(from), 1))) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    }
  }
  return std::nullopt;
}

// h1 and h2 behind hard NATs (a relayed pair) with two weft-relays, pods talking.
absl::StatusOr<std::unique_ptr<LabCluster>> RelayedPairOnTwoRelays() {
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "natgw2", "nat": "hard", "nodes": ["h2"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 2};
  auto c = LabCluster::Create(*spec, bin);
  if (c.ok() && !(*c)->PodPing("h1", (*c)->PodIp("h2"), 15)) {
    return absl::UnavailableError("h1 and h2 do not talk:\n" + (*c)->AgentLog("h1"));
  }
  return c;
}

// Which of the two relays `node`'s agent allocated on first (its log says).
int RelayOf(const LabCluster& cluster, const std::string& node) {
  return cluster.AgentLog(node).find("relay 198.51.100.200:3479: allocated") != std::string::npos ? 1 : 0;
}

class RelayLabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RelayLabTest, RelayedPairsReachEachOther) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  // Both serve TURN over TCP too: a node whose UDP is blocked (u1) joins through it.
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "dc", "nat": "none", "nodes": ["d1"]},
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "natgw2", "nat": "hard", "nodes": ["h2"]},
      {"name": "blocked", "nat": "udp-blocked", "nodes": ["u1"]},
      {"name": "home", "nat": "easy", "nodes": ["e1"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, GetParam()};
  auto c = LabCluster::Create(*spec, bin);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  // Every pair the table relays, both ways; and a direct pair still direct.
  const std::vector<std::pair<std::string, std::string>> relayed = {
      {"h1", "h2"}, {"h2", "h1"}, {"h1", "e1"}, {"e1", "h2"}, {"u1", "h1"}, {"d1", "u1"}, {"u1", "e1"}};
  for (const auto& [a, b] : relayed) {
    EXPECT_TRUE(cluster.PodPing(a, cluster.PodIp(b), 15)) << a << " -> " << b << "\n" << cluster.AgentLog(a);
  }
  EXPECT_TRUE(cluster.PodPing("h1", cluster.PodIp("d1"), 10));
  // The status tells what WireGuard does (reported every 500 ms here), beside the decision.
  auto peer = [&](const std::string& node, const std::string& to) { return cluster.PeerStatus(node, to); };
  for (int i = 0; i < 50 && !(peer("h1", "h2").value("path", "") == "relay" &&
                              peer("h1", "d1").value("path", "") == "direct" &&
                              peer("u1", "h1").value("path", "") == "relay-tcp");
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(peer("h1", "h2").value("path", ""), "relay") << peer("h1", "h2").dump();
  EXPECT_EQ(peer("h1", "h2").value("decision", ""), "relay");
  EXPECT_EQ(peer("h1", "d1").value("path", ""), "direct") << peer("h1", "d1").dump();
  EXPECT_EQ(peer("u1", "h1").value("path", ""), "relay-tcp") << peer("u1", "h1").dump();
  const std::string log = cluster.AgentLog("h1");
  EXPECT_NE(log.find("relay 198.51.100.200:3478: allocated 198.51.100.200:"), std::string::npos) << log;
  EXPECT_NE(log.find("peer h2: relay"), std::string::npos) << log;
  const std::string ulog = cluster.AgentLog("u1");
  EXPECT_NE(ulog.find("(TCP): allocated"), std::string::npos) << ulog;
}

// Each of a relayed pair's agents in turn is killed (SIGKILL) and restarted a second
// later with `extra` flags, while h1's pod pings h2's every 100 ms: not one ping lost.
void AgentRestartsLoseNoPing(LabCluster& cluster, const std::vector<std::string>& extra) {
  ASSERT_TRUE(UntilPodsTalk(cluster, "h1", "h2", std::chrono::seconds(15), /*both_ways=*/true).has_value())
      << cluster.AgentLog("h1");
  for (const std::string node : {"h1", "h2"}) {
    constexpr int kPings = 40;  // 4 s
    std::string out;
    std::thread ping([&] {
      cluster.Pod("h1").Exec(absl::StrCat("ping -i 0.1 -c ", kPings, " -W 1 ", cluster.PodIp("h2")), &out);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cluster.KillAgent(node);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const absl::Status started = cluster.StartAgent(node, extra);
    ping.join();
    ASSERT_TRUE(started.ok()) << started;
    EXPECT_EQ(LostPings(out, kPings), 0) << node << " restarted\n" << out << cluster.AgentLog(node);
    EXPECT_NE(cluster.AgentLog(node).find("adopting the running relay forwarder"), std::string::npos)
        << cluster.AgentLog(node);
    EXPECT_EQ(cluster.PeerStatus("h1", "h2").value("path", ""), "relay") << cluster.PeerStatus("h1", "h2").dump();
  }
}

// The agent launched its relay forwarder (standalone): the forwarder, a process of its
// own, keeps relaying meanwhile, and the new agent adopts it (the same allocation, the
// same proxies).
TEST(RelayRestartLabTest, ARelayedPairLosesNoPingWhileItsAgentRestarts) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  auto c = RelayedPairOnTwoRelays();
  ASSERT_TRUE(c.ok()) << c.status();
  AgentRestartsLoseNoPing(**c, {});
}

// As the chart runs it: the forwarder is a sidecar (its own container in Kubernetes), the
// agents only use it; the same, and no agent ever launches a forwarder of its own.
TEST(RelayRestartLabTest, WithTheChartsSidecarForwarderToo) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "natgw2", "nat": "hard", "nodes": ["h2"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 2};
  auto c = LabCluster::Create(*spec, bin, /*start_agents=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const std::vector<std::string> sidecar = {"--relay-forwarder-sidecar"};
  for (const char* n : {"h1", "h2"}) {
    ASSERT_TRUE(cluster.StartRelayForwarderSidecar(n).ok());
    ASSERT_TRUE(cluster.StartAgent(n, sidecar).ok()) << cluster.AgentLog(n);
    ASSERT_TRUE(cluster.AddPod(n).ok());
  }
  AgentRestartsLoseNoPing(cluster, sidecar);
  EXPECT_NE(system(absl::StrCat("pgrep -f '[r]elay-forwarder --socket ", cluster.File(""), ".* --idle-exit-s' >/dev/null").c_str()), 0)
      << "an agent launched a forwarder though it was told to use the sidecar";
}

// Two relays; the one carrying a relayed pair is killed: the agents move to the other
// and the pair's pods talk again within 10 s.
TEST(RelayFailoverLabTest, PairsMoveToAnotherRelayWhenTheirsDies) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  auto c = RelayedPairOnTwoRelays();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  // Kill the relay one of the nodes uses: find it in the agent's log.
  const int used = RelayOf(cluster, "h1");
  cluster.KillRelay(used);
  const auto took = UntilPodsTalk(cluster, "h1", "h2", std::chrono::seconds(20));
  ASSERT_TRUE(took.has_value()) << cluster.AgentLog("h1") << cluster.AgentLog("h2");
  std::printf("relay %d killed: pods talk again after %lld ms\n", used, static_cast<long long>(took->count()));
  EXPECT_LT(*took, std::chrono::seconds(10));
  EXPECT_NE(cluster.AgentLog("h1").find("stopped answering: moving on"), std::string::npos);
}

// The relay carrying a pair leaves the controller's list while it still runs (in
// Kubernetes: its pod is terminating, its endpoint no longer ready): the agents on it
// move to another relay before it goes, and the pods keep talking.
TEST(RelayDrainLabTest, PairsMoveOffARelayThatLeavesTheList) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  auto c = RelayedPairOnTwoRelays();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const int used = RelayOf(cluster, "h1");
  const int other = 1 - used;
  cluster.ListRelays({other});
  const auto listed = std::chrono::steady_clock::now();
  const std::string moved = absl::StrCat("relay 198.51.100.200:", 3478 + other);
  bool on_other = false;
  while (!on_other && std::chrono::steady_clock::now() - listed < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string log = cluster.AgentLog("h1");
    on_other = log.find("is no longer listed: moving on") != std::string::npos &&
               log.find(moved + ": allocated", log.find("is no longer listed")) != std::string::npos;
  }
  ASSERT_TRUE(on_other) << cluster.AgentLog("h1");
  const auto talk = UntilPodsTalk(cluster, "h1", "h2", std::chrono::seconds(20), /*both_ways=*/true);
  ASSERT_TRUE(talk.has_value()) << cluster.AgentLog("h1") << cluster.AgentLog("h2");
  const auto took = std::chrono::steady_clock::now() - listed;
  std::printf("relay %d unlisted: both agents on relay %d, pods talk after %lld ms\n", used, other,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_LT(took, std::chrono::seconds(10));
  // Nobody is left on the unlisted relay, though it still answers.
  for (const char* n : {"h1", "h2"}) {
    const std::string log = cluster.AgentLog(n);
    const size_t last = log.rfind(": allocated");
    ASSERT_NE(last, std::string::npos) << log;
    const size_t bol = log.rfind('\n', last);
    const std::string line = log.substr(bol == std::string::npos ? 0 : bol + 1, last - (bol == std::string::npos ? 0 : bol + 1));
    EXPECT_NE(line.find(moved), std::string::npos) << n << ": " << line << "\n" << log;
    EXPECT_EQ(log.find(absl::StrCat("relay 198.51.100.200:", 3478 + used, " stopped answering")), std::string::npos) << log;
  }
}

// A live direct pair loses its direct path (a router starts dropping the pair's UDP):
// the agents fall back to the relay and pings resume within 3 s.
TEST(RelayFallbackLabTest, ACutDirectPathFallsBackToTheRelay) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "home", "nat": "easy", "nodes": ["e1"]},
      {"name": "shop", "nat": "easy", "nodes": ["e2"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1};
  auto c = LabCluster::Create(*spec, bin);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_TRUE(cluster.PodPing("e1", cluster.PodIp("e2"), 15)) << cluster.AgentLog("e1");
  // Both agents hold a relay allocation before the cut (their relayed candidates).
  for (int i = 0; i < 100 && (cluster.AgentLog("e1").find("allocated") == std::string::npos ||
                               cluster.AgentLog("e2").find("allocated") == std::string::npos); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // channels bound
  ASSERT_EQ(cluster.AgentLog("e1").find("falling back"), std::string::npos) << "direct works before the cut";
  // Pings every 100 ms through the cut: the loss is the time without a path.
  int lost = -1;
  std::string ping_out;
  std::thread pinger([&] {
    cluster.Pod("e1").Exec(absl::StrCat("ping -O -i 0.1 -c 80 -W 1 ", cluster.PodIp("e2")), &ping_out);
    lost = LostPings(ping_out, 80);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string shop = cluster.lab().WanIp("shop").ToString();
  std::string out;
  const int cut = cluster.lab().ns("r-home").Exec(
      absl::StrCat("nft add rule ip weftlab lab_filter ip daddr ", shop, " meta l4proto udp drop && ",
                   "nft add rule ip weftlab lab_filter ip saddr ", shop, " meta l4proto udp drop"),
      &out);
  pinger.join();
  ASSERT_EQ(cut, 0) << out;
  std::printf("direct path cut: %d pings of 100 ms lost\n", lost);
  EXPECT_GE(lost, 0) << ping_out;
  EXPECT_LE(lost, 30) << ping_out << cluster.AgentLog("e1") << cluster.AgentLog("e2");
  EXPECT_TRUE(cluster.PodPing("e1", cluster.PodIp("e2"), 3));
  // The status tells it: relayed now, decided direct, and why.
  json peer = cluster.PeerStatus("e1", "e2");
  for (int i = 0; i < 30 && peer.value("path", "") != "relay"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    peer = cluster.PeerStatus("e1", "e2");
  }
  EXPECT_EQ(peer.value("path", ""), "relay") << peer.dump();
  EXPECT_EQ(peer.value("decision", ""), "direct") << peer.dump();
  EXPECT_EQ(peer.value("why", "").rfind("the direct path stopped answering", 0), 0u) << peer.dump();
}

// A relayed pair whose hard NAT becomes easy goes direct within 30 s, and pings every
// 100 ms through the move lose nothing: the agents punch the new path before moving.
TEST(RelayUpgradeLabTest, ARelayedPairGoesDirectWhenItCanWithoutLoss) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go conntrack"); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "home", "nat": "easy", "nodes": ["e1"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1};
  auto c = LabCluster::Create(*spec, bin);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_TRUE(cluster.PodPing("h1", cluster.PodIp("e1"), 15)) << cluster.AgentLog("h1");
  auto path = [&]() -> std::string { return cluster.PeerStatus("h1", "e1").value("path", ""); };
  for (int i = 0; i < 30 && path() != "relay"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(path(), "relay");
  int lost = -1;
  std::string ping_out;
  std::thread pinger([&] {
    std::string& out = ping_out;
    cluster.Pod("h1").Exec(absl::StrCat("ping -O -i 0.1 -c 150 -W 1 ", cluster.PodIp("e1")), &out);
    lost = LostPings(out, 150);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // The NAT keeps ports from now on; the WireGuard port's old random mappings are
  // forgotten (the relay's flow keeps its own).
  ASSERT_TRUE(cluster.lab().SetNat("natgw", NatKind::kEasy).ok());
  std::string out;
  cluster.lab().ns("r-natgw").Exec("conntrack -D -p udp --orig-port-src 51820 2>&1", &out);
  const auto changed = std::chrono::steady_clock::now();
  while (path() != "direct" && std::chrono::steady_clock::now() - changed < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto took = std::chrono::steady_clock::now() - changed;
  pinger.join();
  std::printf("hard NAT made easy: the pair is direct after %lld ms; %d of 150 pings lost\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()), lost);
  EXPECT_EQ(path(), "direct");
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_EQ(lost, 0) << ping_out.substr(ping_out.find("no answer") == std::string::npos ? 0 : ping_out.find("no answer") - 200, 600);
  EXPECT_NE(cluster.AgentLog("h1").find("peer e1: relay (probing the direct path before moving"), std::string::npos)
      << cluster.AgentLog("h1");
}

INSTANTIATE_TEST_SUITE_P(Relays, RelayLabTest, ::testing::Values("weft", "coturn"),
                         [](const auto& info) { return info.param == "weft" ? std::string("WeftRelay") : std::string("Coturn"); });

}  // namespace
}  // namespace weft::lab
