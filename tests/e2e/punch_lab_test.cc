// Collision-free punching (root): nodes behind routers that do not drop unsolicited
// inbound UDP (easy-open), where a peer's first packet arriving before the node's own
// would make the router bind its public port to that packet (seeds/004). Each pair the
// table makes direct must be direct in WireGuard within 5 s of both agents knowing each
// other, every run. And a pair relayed over IPv4 that has global IPv6 on both sides,
// behind stateful firewalls: direct over IPv6, every run.
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/wireguard/uapi.h"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

// The node's WireGuard endpoint for its one peer: "direct", "relay" or "none"; "direct"
// only once a handshake completed (over that endpoint: WireGuard roams to it).
std::string PathOf(const LabCluster& cluster, const std::string& node) {
  wireguard::UapiDevice dev(cluster.WireGuardName(node));
  auto st = dev.Get();
  if (!st.ok() || st->peers.empty()) return "none";
  const auto& e = st->peers[0].endpoint;
  if (!e) return "none";
  if (e->ip.ToString().rfind("127.", 0) == 0) return "relay";
  return st->peers[0].last_handshake.time_since_epoch().count() != 0 ? "direct" : "direct, no handshake";
}

struct Row {
  const char* name;
  const char* sites;  // two nodes, a and b
};

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

class PunchLabTest : public ::testing::TestWithParam<Row> {};

TEST_P(PunchLabTest, DirectWithinFiveSecondsEveryRun) {
  if (std::string why = testing::MissingForRootTest("turnserver wireguard-go"); !why.empty()) GTEST_SKIP() << why;
  const char* runs_env = std::getenv("WEFT_PUNCH_RUNS");
  const int runs = runs_env != nullptr && std::atoi(runs_env) > 0 ? std::atoi(runs_env) : 10;
  auto spec = ParseLabSpec(absl::StrCat(R"({"stun_servers": 3, "sites": )", GetParam().sites, "}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1};
  auto c = LabCluster::Create(*spec, bin);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  int direct_runs = 0;
  for (int run = 0; run < runs; ++run) {
    // A cluster meeting for the first time: fresh agents and devices, a controller that
    // forgot both nodes, the routers' mappings gone (conntrack flushed). a starts; then b,
    // and both learn of each other as b reports.
    for (const char* n : {"a", "b"}) {
      cluster.StopAgent(n);
      cluster.DeleteDevice(n);
    }
    std::string out;
    for (const char* r : {"r-sa", "r-sb"}) {
      if (cluster.lab().HasNs(r)) cluster.lab().ns(r).Exec("conntrack -F 2>&1", &out);
    }
    ASSERT_TRUE(cluster.RestartControllerFresh().ok());
    ASSERT_TRUE(cluster.StartAgent("a").ok());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(cluster.StartAgent("b").ok());
    // Both know each other once both devices have the other as a peer; then 5 s.
    auto has_peer = [&](const char* n) {
      wireguard::UapiDevice dev(cluster.WireGuardName(n));
      auto st = dev.Get();
      return st.ok() && !st->peers.empty();
    };
    auto deadline = start + std::chrono::seconds(15);
    std::optional<std::chrono::steady_clock::time_point> known;
    while (std::chrono::steady_clock::now() < deadline && (PathOf(cluster, "a") != "direct" || PathOf(cluster, "b") != "direct")) {
      if (!known && has_peer("a") && has_peer("b")) known = std::chrono::steady_clock::now();
      if (std::getenv("WEFT_PUNCH_TRACE") != nullptr) {
        static std::string last;
        std::string now_s = PathOf(cluster, "a") + " / " + PathOf(cluster, "b");
        for (const char* n : {"a", "b"}) {
          wireguard::UapiDevice dev(cluster.WireGuardName(n));
          auto st = dev.Get();
          if (st.ok() && !st->peers.empty()) {
            now_s += absl::StrCat(" | ", n, ": ", st->peers[0].endpoint ? st->peers[0].endpoint->ToString() : "-",
                                  " tx ", st->peers[0].tx_bytes, " rx ", st->peers[0].rx_bytes);
          }
        }
        if (now_s != last) {
          std::printf("  +%lld ms %s\n",
                      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - start).count()),
                      now_s.c_str());
          last = now_s;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!known) known = start;
    const auto took = std::chrono::steady_clock::now() - *known;
    std::printf("  both knew each other %lld ms after b started\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(*known - start).count()));
    const bool ok = PathOf(cluster, "a") == "direct" && PathOf(cluster, "b") == "direct" &&
                    cluster.PodPing("a", cluster.PodIp("b"), 2) && took < std::chrono::seconds(5);
    std::printf("%s run %d: %s after %lld ms (a %s, b %s)\n", GetParam().name, run, ok ? "direct" : "NOT direct",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
                PathOf(cluster, "a").c_str(), PathOf(cluster, "b").c_str());
    direct_runs += ok;
    if (!ok && direct_runs == run) {
      ADD_FAILURE() << cluster.AgentLog("a") << "\n---\n" << cluster.AgentLog("b") << cluster.ControllerStatus()
                    << "pods " << cluster.PodIp("a") << " " << cluster.PodIp("b");
    }
  }
  EXPECT_EQ(direct_runs, runs);
}

INSTANTIATE_TEST_SUITE_P(
    Rows, PunchLabTest,
    ::testing::Values(
        Row{"EasyOpenToEasyOpen", R"([{"name": "sa", "nat": "easy-open", "nodes": ["a"]},
                                      {"name": "sb", "nat": "easy-open", "nodes": ["b"]}])"},
        Row{"EasyToEasyOpen", R"([{"name": "sa", "nat": "easy", "nodes": ["a"]},
                                  {"name": "sb", "nat": "easy-open", "nodes": ["b"]}])"},
        Row{"ConeToEasyOpen", R"([{"name": "sa", "nat": "cone", "nodes": ["a"]},
                                  {"name": "sb", "nat": "easy-open", "nodes": ["b"]}])"},
        Row{"EasyToEasy", R"([{"name": "sa", "nat": "easy", "nodes": ["a"]},
                              {"name": "sb", "nat": "easy", "nodes": ["b"]}])"},
        // Relayed over IPv4 (both hard), direct over IPv6 through two stateful firewalls.
        Row{"HardWithIpv6ToHardWithIpv6", R"([{"name": "sa", "nat": "hard", "ipv6": "global", "nodes": ["a"]},
                                              {"name": "sb", "nat": "hard", "ipv6": "global", "nodes": ["b"]}])"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace weft::lab
