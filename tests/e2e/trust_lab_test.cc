// Trust boundaries in the NAT lab (root), with the real binaries against an attacker
// (tests/attack/weft-hostile):
//  - a rogue admitted agent claims another node's pod CIDR, the default route in halves,
//    another node's key, 100 candidates, another node's name (with its own key): the
//    controller refuses each with a clear status, and no honest node's WireGuard peers or
//    routes change;
//  - a hostile controller welcomes an agent with nft syntax in a cluster CIDR: refused,
//    nothing installed; and hands it a peer claiming the default route in halves and
//    the agent's own pod CIDR: refused, no such route.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "lib/status/status_macros.h"
#include "lib/testing/slurp.h"
#include "lib/wireguard/device.h"
#include "lib/wireguard/uapi.h"
#include "nlohmann/json.hpp"
#include "tests/lab/child_process.h"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

using nlohmann::json;

// The rogue node's own key, the same in every attack (its first, honest join pins it).
constexpr char kRogueKey[] = "cm9ndWUtbm9kZS1wdWJsaWMta2V5LTMyLWJ5dGVzISE=";

// What a node holds for its peers: WireGuard's keys and AllowedIPs, and its routes.
std::string DataPlane(LabCluster& cluster, const std::string& node) {
  wireguard::UapiDevice dev(cluster.WireGuardName(node));
  auto st = dev.Get();
  if (!st.ok()) return "device: " + st.status().ToString();
  std::vector<std::string> peers;  // in key order (the device lists them in its own)
  for (const auto& p : st->peers) {
    std::string line = absl::StrCat("peer ", p.public_key.ToBase64(), ":");
    for (const auto& a : p.allowed_ips) absl::StrAppend(&line, " ", a.ToString());
    peers.push_back(line + "\n");
  }
  std::sort(peers.begin(), peers.end());
  std::string out = absl::StrJoin(peers, "");
  std::string routes;
  cluster.lab().ns("n-" + node).Exec("ip -4 route show table all; ip -6 route show table all", &routes);
  return out + routes;
}

// weft-hostile in `node`'s namespace until it exits (bounded: 20 s); its output.
std::string RunHostile(LabCluster& cluster, const std::string& node, const std::vector<std::string>& args,
                       const std::string& log) {
  std::vector<std::string> argv = {WEFT_HOSTILE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(cluster.lab().ns("n-" + node).path(), argv, log);
  for (int i = 0; i < 200 && !p.Exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return testing::Slurp(log);
}

// Honest nodes a (public) and b (easy NAT), agents running, pods talking; node "rogue"
// has no agent: weft-hostile plays it.
absl::StatusOr<std::unique_ptr<LabCluster>> HonestPairAndARogue() {
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "dc", "nat": "none", "nodes": ["a", "rogue"]},
      {"name": "home", "nat": "easy", "nodes": ["b"]}]})");
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY};
  ASSIGN_OR_RETURN(std::unique_ptr<LabCluster> c, LabCluster::Create(*spec, bin, /*start_agents=*/false));
  for (const char* n : {"a", "b"}) {
    RETURN_IF_ERROR(c->StartAgent(n));
    RETURN_IF_ERROR(c->AddPod(n));
  }
  if (!c->PodPing("a", c->PodIp("b"), 20)) return absl::UnavailableError("a and b do not talk:\n" + c->AgentLog("a"));
  return c;
}

// weft-hostile as an admitted agent of `cluster` (a valid join token) for `node`.
std::vector<std::string> HostileAgentArgs(LabCluster& cluster, const std::string& node) {
  return {"--mode", "agent", "--controller", "198.51.100.200:7443", "--ca-file", cluster.File("ca.crt"),
          "--join-token-file", cluster.File("token"), "--node", node};
}

class TrustLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest("wireguard-go nft"); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(TrustLabTest, ARogueAgentChangesNoHonestNodesPeersOrRoutes) {
  auto c = HonestPairAndARogue();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_TRUE(cluster.PodPing("b", cluster.PodIp("a"), 20)) << cluster.AgentLog("b");

  std::vector<std::string> join = HostileAgentArgs(cluster, "rogue");
  join.insert(join.end(), {"--key", kRogueKey});
  // First the rogue as an honest node: the tool works, and a and b take it as a peer.
  auto run = [&](const std::string& attack, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = join;
    args.insert(args.end(), {"--attack", attack});
    args.insert(args.end(), extra.begin(), extra.end());
    return RunHostile(cluster, "rogue", args, cluster.File("hostile-" + attack + ".log"));
  };
  const std::string honest = run("none");
  EXPECT_NE(honest.find("status 4:"), std::string::npos) << "accepted, kept until the deadline: " << honest;
  std::this_thread::sleep_for(std::chrono::seconds(2));

  json status = json::parse(cluster.ControllerStatus());
  std::string a_cidr;
  for (const auto& n : status["nodes"]) {
    if (n["name"] == "a") a_cidr = n["podCIDRs"][0];
  }
  ASSERT_FALSE(a_cidr.empty()) << status.dump();
  auto a_key = wireguard::UapiDevice(cluster.WireGuardName("a")).Get();
  ASSERT_TRUE(a_key.ok());

  const std::string a_before = DataPlane(cluster, "a"), b_before = DataPlane(cluster, "b");
  ASSERT_EQ(std::count(a_before.begin(), a_before.end(), '\n') > 0, true);
  struct Attack {
    std::string kind;
    std::vector<std::string> extra;
    std::string says;
  };
  const std::vector<Attack> attacks = {
      {"cidr-of-victim", {"--victim-cidr", a_cidr}, "status 7: NodeInfo refused: node \"rogue\" reported pod CIDRs"},
      {"default-halves", {}, "0.0.0.0/1"},
      {"victim-key", {"--victim-key", a_key->public_key.ToBase64()}, "status 7: NodeInfo refused: node \"rogue\" reported the WireGuard key of node \"a\""},
      {"candidates-100", {}, "status 3: NodeInfo refused: 100 candidates: at most 16"},
  };
  for (const auto& attack : attacks) {
    const std::string out = run(attack.kind, attack.extra);
    EXPECT_NE(out.find(attack.says), std::string::npos) << attack.kind << ": " << out;
  }
  // The join token is every node's: with it, node a's name and another key (the tool's
  // own), refused: a's key was pinned when it first joined.
  std::vector<std::string> as_a = HostileAgentArgs(cluster, "a");  // and a key of its own, new
  as_a.insert(as_a.end(), {"--attack", "none"});
  const std::string taken = RunHostile(cluster, "rogue", as_a, cluster.File("hostile-as-a.log"));
  EXPECT_NE(taken.find("status 7: NodeInfo refused: node \"a\" joined before with another WireGuard key"),
            std::string::npos)
      << taken;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // anything that leaked would be applied by now
  EXPECT_EQ(DataPlane(cluster, "a"), a_before);
  EXPECT_EQ(DataPlane(cluster, "b"), b_before);
  EXPECT_TRUE(cluster.PodPing("a", cluster.PodIp("b"), 5));
  json after = json::parse(cluster.ControllerStatus());
  EXPECT_EQ(after["agentInput"]["refused"], 5) << after["agentInput"].dump();
}

long RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// An admitted agent sending health reports of almost 1 MiB, up to 1,000 a second: the
// excess is dropped and counted, the controller's memory stays flat, and an honest agent
// that restarts meanwhile is welcomed as usual.
TEST_F(TrustLabTest, AFloodingAgentIsThrottledAndOthersAreUnaffected) {
  auto c = HonestPairAndARogue();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const long rss_before = RssKb(cluster.ControllerPid());
  std::vector<std::string> argv = HostileAgentArgs(cluster, "rogue");
  argv.insert(argv.begin(), WEFT_HOSTILE_BINARY);
  argv.insert(argv.end(), {"--attack", "flood-health", "--flood-seconds", "10"});
  ChildProcess flood(cluster.lab().ns("n-rogue").path(), argv, cluster.File("hostile-flood.log"));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // An honest agent restarts in the middle of it: welcomed (its conflist written) as usual.
  cluster.StopAgent("b");
  std::filesystem::remove(cluster.File("b/net.d/10-weft.conflist"));  // StartAgent waits for a new one
  const auto restart = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster.StartAgent("b").ok()) << cluster.AgentLog("b");
  const double welcomed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - restart).count();
  long rss_peak = rss_before;
  for (int i = 0; i < 300 && !flood.Exited(); ++i) {  // bounded: 30 s
    rss_peak = std::max(rss_peak, RssKb(cluster.ControllerPid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string out = testing::Slurp(cluster.File("hostile-flood.log"));
  json status = json::parse(cluster.ControllerStatus());
  std::printf("%s controller RSS %ld KB before, %ld KB at most; agentInput %s; b welcomed %.1f s after restarting\n",
              out.substr(0, out.find('\n')).c_str(), rss_before, rss_peak, status["agentInput"].dump().c_str(),
              welcomed_s);
  EXPECT_NE(out.find("flood: sent"), std::string::npos) << out;
  EXPECT_GT(status["agentInput"]["droppedRate"].get<int>(), 0) << status["agentInput"].dump();
  EXPECT_GT(status["agentInput"]["droppedHealthEntries"].get<int>(), 0) << status["agentInput"].dump();
  EXPECT_LT(rss_peak - rss_before, 50 * 1024) << "controller memory grew";
  EXPECT_LT(welcomed_s, 5.0);
  for (const auto& n : status["nodes"]) {
    if (n["name"] == "a" || n["name"] == "b") {
      EXPECT_TRUE(n["connected"].get<bool>()) << n.dump();
    }
  }
  EXPECT_TRUE(cluster.PodPing("a", cluster.PodIp("b"), 10)) << cluster.AgentLog("b");
}

// One public node "v" and no agent: the tests start v's agent against weft-hostile.
absl::StatusOr<std::unique_ptr<LabCluster>> LoneNodeLab() {
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [{"name": "dc", "nat": "none", "nodes": ["v"]}]})");
  if (!spec.ok()) return spec.status();
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY};
  return LabCluster::Create(*spec, bin, /*start_agents=*/false);
}

// v's agent against the (insecure) controller at `controller`, its files under v-`tag`
// and its log at v-`tag`.log.
std::unique_ptr<ChildProcess> AgentOfV(LabCluster& cluster, const std::string& tag, const std::string& controller,
                                       const std::vector<std::string>& extra = {}) {
  std::vector<std::string> stun;
  for (const auto& t : cluster.lab().StunTargets()) stun.push_back(t.ToString());
  const std::string d = cluster.File("v-" + tag);
  std::filesystem::create_directories(d + "/state");
  std::vector<std::string> args{WEFT_AGENT_BINARY, "--node", "v", "--controller", controller, "--insecure",
                                "--wg-interface", cluster.WireGuardName("v"), "--state-dir", d + "/state",
                                "--cni-conf-dir", d + "/net.d", "--cni-data-dir", d + "/cni", "--stun",
                                absl::StrJoin(stun, ","), "--join-token-file", cluster.File("token")};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(cluster.lab().ns("n-v").path(), args, d + ".log");
}

TEST_F(TrustLabTest, AHostileControllersTextNeverBecomesRulesOrRoutes) {
  auto c = LoneNodeLab();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const testing::TestNetns& ns = cluster.lab().ns("n-v");
  std::string rules_before, routes_before;
  ns.Exec("nft list ruleset", &rules_before);
  ns.Exec("ip -4 route show table all", &routes_before);

  auto agent = [&](const std::string& tag) { return AgentOfV(cluster, tag, "127.0.0.1:7444"); };
  auto wait_log = [&](const std::string& path, const std::string& what) {
    for (int i = 0; i < 100; ++i) {
      if (testing::Slurp(path).find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  {
    // nft syntax in a cluster CIDR (no commas: the tool's list flag splits on them).
    ChildProcess hostile(ns.path(),
                         {WEFT_HOSTILE_BINARY, "--mode", "controller", "--listen", "127.0.0.1:7444", "--pod-cidr",
                          "10.244.5.0/24", "--cluster-cidr", "10.244.0.0/16 } ; add table ip pwned ; flush ruleset ; {"},
                         cluster.File("hostile-nft.log"));
    auto a = agent("nft");
    EXPECT_TRUE(wait_log(cluster.File("v-nft.log"), "Welcome refused: cluster CIDR")) << testing::Slurp(cluster.File("v-nft.log"));
    a->Stop();
  }
  std::string rules_after;
  ns.Exec("nft list ruleset", &rules_after);
  EXPECT_EQ(rules_after, rules_before);
  EXPECT_FALSE(std::filesystem::exists(cluster.File("v-nft/net.d/10-weft.conflist")));
  {
    // A peer claiming the default route in halves, the node's own pod CIDR and another
    // range outside the cluster.
    ChildProcess hostile(ns.path(),
                         {WEFT_HOSTILE_BINARY, "--mode", "controller", "--listen", "127.0.0.1:7444", "--pod-cidr",
                          "10.244.5.0/24", "--cluster-cidr", "10.244.0.0/16", "--peer-cidr",
                          "0.0.0.0/1,128.0.0.0/1,10.244.5.0/25,192.0.2.0/24,10.244.9.0/24"},
                         cluster.File("hostile-routes.log"));
    auto a = agent("routes");
    const std::string log = cluster.File("v-routes.log");
    EXPECT_TRUE(wait_log(log, "peer mallory: refused what the controller said of it")) << testing::Slurp(log);
    EXPECT_TRUE(wait_log(log, "peer mallory: direct")) << testing::Slurp(log);
    std::string routes;
    ns.Exec("ip -4 route show table all", &routes);
    EXPECT_EQ(routes.find("0.0.0.0/1"), std::string::npos) << routes;
    EXPECT_EQ(routes.find("128.0.0.0/1"), std::string::npos) << routes;
    EXPECT_EQ(routes.find("10.244.5.0/25"), std::string::npos) << routes;
    EXPECT_EQ(routes.find("192.0.2.0/24 dev " + cluster.WireGuardName("v")), std::string::npos) << routes;
    EXPECT_NE(routes.find("10.244.9.0/24 dev " + cluster.WireGuardName("v") + " proto 87"), std::string::npos)
        << "the one acceptable prefix is routed, with Weft's marker: " << routes;
    auto dev = wireguard::UapiDevice(cluster.WireGuardName("v")).Get();
    ASSERT_TRUE(dev.ok());
    ASSERT_EQ(dev->peers.size(), 1u);
    ASSERT_EQ(dev->peers[0].allowed_ips.size(), 1u);
    EXPECT_EQ(dev->peers[0].allowed_ips[0].ToString(), "10.244.9.0/24");
    a->Stop();
  }
}

// A controller that floods: 2,000 directives flipping a pair between direct and relay,
// and 2,000 Reprobes whose text is terminal escapes. The agent takes the directives as a
// burst (a few reconciles, not one per message), honours Reprobes at most 2 at once and 1
// per 5 s after, never prints the escapes raw, and stays up.
TEST_F(TrustLabTest, AControllerFloodingDirectivesAndReprobesCostsAFewReconciles) {
  auto c = LoneNodeLab();
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const testing::TestNetns& ns = cluster.lab().ns("n-v");
  constexpr int kFlood = 2000;
  ChildProcess hostile(ns.path(),
                       {WEFT_HOSTILE_BINARY, "--mode", "controller", "--listen", "127.0.0.1:7445", "--pod-cidr",
                        "10.244.5.0/24", "--cluster-cidr", "10.244.0.0/16", "--peer-cidr", "10.244.9.0/24", "--flood",
                        std::to_string(kFlood)},
                       cluster.File("hostile-flood.log"));
  const std::string d = cluster.File("v-flood");
  auto agent = AgentOfV(cluster, "flood", "127.0.0.1:7445", {"--http-listen", "127.0.0.1:9477"});
  const std::string get =
      "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9477/metrics', timeout=2)"
      ".read().decode())\"";
  // Until the agent has taken every message (2 per flood round, plus Welcome, snapshot and
  // the first directive): at most 20 s.
  std::string metrics;
  int64_t messages = 0, reconciles = -1;
  for (int i = 0; i < 200 && messages < 2 * kFlood + 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (ns.Exec(get, &metrics) != 0) continue;
    auto value = [&](const std::string& name) -> int64_t {
      const size_t at = metrics.find("\n" + name + " ");
      return at == std::string::npos ? -1 : std::atoll(metrics.c_str() + at + name.size() + 2);
    };
    messages = value("weft_agent_controller_messages_total");
    reconciles = value("weft_agent_reconciles_total");
  }
  ASSERT_EQ(messages, 2 * kFlood + 3) << metrics << testing::Slurp(d + ".log");
  std::printf("%lld controller messages (%d directives flipping one pair): %lld reconciles\n",
              static_cast<long long>(messages), kFlood + 1, static_cast<long long>(reconciles));
  EXPECT_GE(reconciles, 1);
  // Measured here: 216 reconciles for 2,001 directives (one per directive before the
  // coalescer); half the directives is the bound, with room for a slower machine.
  EXPECT_LE(reconciles, kFlood / 2) << "one reconcile per burst, not per directive";
  const std::string log = testing::Slurp(d + ".log");
  size_t honoured = 0;
  for (size_t at = 0; (at = log.find("probing a fresh flow", at)) != std::string::npos; ++at) ++honoured;
  EXPECT_GE(honoured, 1u);
  EXPECT_LE(honoured, 6u) << "Reprobes are honoured at most 2 at once and 1 per 5 s after";
  EXPECT_EQ(log.find("\x1b"), std::string::npos) << "terminal escapes from the controller printed raw";
  EXPECT_EQ(ns.Exec(get, &metrics), 0) << "the agent is still up";
}

}  // namespace
}  // namespace weft::lab
