// Dual-stack and IPv6-only pod networks in the NAT lab (root): the controller hands every
// node a block of each cluster CIDR, weft-cni gives each pod an address of each family,
// and every pod reaches every other over each of them, on direct pairs and relayed ones
// alike (the underlay is the lab's IPv4 internet; IPv6 underlay is another test's).
#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go nft";  // besides root

// Five nodes: public, two behind one easy NAT (a local pair), one behind another easy NAT,
// and one behind a hard NAT (relayed to the easy ones).
constexpr char kSites[] = R"({"stun_servers": 3, "sites": [
    {"name": "dc", "nat": "none", "nodes": ["dc1"]},
    {"name": "home", "nat": "easy", "nodes": ["home1"]},
    {"name": "office", "nat": "easy", "nodes": ["office1", "office2"]},
    {"name": "natgw", "nat": "hard", "nodes": ["aws1"]}]})";

bool IsV6(const std::string& ip) { return absl::StrContains(ip, ':'); }

// Pings every address of every other pod from every pod; returns what failed, "" when none.
std::string EveryPairOverEveryFamily(LabCluster& c) {
  std::string failed;
  for (const auto& a : c.nodes()) {
    for (const auto& b : c.nodes()) {
      if (a == b) continue;
      for (const std::string& ip : c.PodIps(b)) {
        if (!c.PodPing(a, ip, 20)) absl::StrAppend(&failed, a, " -> ", b, " (", ip, "); ");
      }
    }
  }
  return failed;
}

// The pair's status once its path is direct, or the last one seen after 10 s (bounded:
// 50 polls, 200 ms apart: the status catches up with WireGuard's handshakes).
nlohmann::json StatusOnceDirect(const LabCluster& c, const std::string& a, const std::string& b) {
  nlohmann::json st;
  for (int i = 0; i < 50; ++i) {
    st = c.PeerStatus(a, b);
    if (st.value("path", "") == "direct") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return st;
}

class DualStackLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  }
  absl::StatusOr<std::unique_ptr<LabCluster>> Cluster(const std::string& cluster_cidr, const char* sites = kSites) {
    auto spec = ParseLabSpec(sites);
    if (!spec.ok()) return spec.status();
    ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft"};
    bin.cluster_cidr = cluster_cidr;
    return LabCluster::Create(*spec, bin);
  }
};

TEST_F(DualStackLabTest, EveryPodReachesEveryOtherOverIPv4AndIPv6DirectAndRelayed) {
  auto c = Cluster("10.244.0.0/16,fd00:10:244::/56");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  for (const auto& n : cluster.nodes()) {
    ASSERT_EQ(cluster.PodIps(n).size(), 2u) << n;
    EXPECT_FALSE(IsV6(cluster.PodIps(n)[0])) << n;
    EXPECT_TRUE(IsV6(cluster.PodIps(n)[1])) << n;
    EXPECT_TRUE(absl::StartsWith(cluster.PodIps(n)[1], "fd00:10:244:")) << cluster.PodIps(n)[1];
    // The conflist carries both blocks; the egress table masquerades both families.
    EXPECT_TRUE(absl::StrContains(cluster.Conflist(n), "fd00:10:244:")) << cluster.Conflist(n);
    std::string nft;
    cluster.lab().ns("n-" + n).Exec("nft list table inet weft", &nft);
    EXPECT_TRUE(absl::StrContains(nft, "ip6 saddr fd00:10:244:")) << n << ": " << nft;
    EXPECT_TRUE(absl::StrContains(nft, "ip saddr 10.244.")) << n << ": " << nft;
  }
  const std::string failed = EveryPairOverEveryFamily(cluster);
  EXPECT_EQ(failed, "") << cluster.AgentLog("aws1");
  // The hard-NAT node's pairs with the easy ones went through the relay: both families
  // share the one tunnel, whatever its path.
  EXPECT_EQ(cluster.PeerStatus("aws1", "home1").value("path", ""), "relay") << cluster.ControllerStatus();
}

// Two sites whose IPv4 is behind hard NATs (relayed over IPv4) and whose nodes have
// global IPv6 behind stateful firewalls: direct over IPv6, the reason says so, pods talk
// over both families; so does a site behind carrier-grade NAT with IPv6 (relayed over
// IPv4 with a hard NAT: it filters by port); a hard-NAT site without IPv6 stays relayed,
// as before.
TEST_F(DualStackLabTest, HardNatSitesWithGlobalIpv6GoDirectOverIpv6) {
  auto c = Cluster("10.244.0.0/16,fd00:10:244::/56", R"({"stun_servers": 3, "sites": [
      {"name": "edge1", "nat": "hard", "ipv6": "global", "nodes": ["e1"]},
      {"name": "edge2", "nat": "hard", "ipv6": "global", "nodes": ["e2"]},
      {"name": "mobile", "nat": "cgnat", "ipv6": "global", "nodes": ["m1"]},
      {"name": "natgw", "nat": "hard", "nodes": ["h3"]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  for (const std::string& ip : cluster.PodIps("e2")) {
    EXPECT_TRUE(cluster.PodPing("e1", ip, 20)) << ip << "\n" << cluster.AgentLog("e1");
  }
  const nlohmann::json st = StatusOnceDirect(cluster, "e1", "e2");
  EXPECT_EQ(st.value("path", ""), "direct") << st.dump();
  EXPECT_TRUE(absl::StrContains(st.value("reason", ""), "direct over IPv6")) << st.dump();
  EXPECT_TRUE(absl::StrContains(st.dump(), "2001:db8:2::2")) << "e2's IPv6 endpoint: " << st.dump();
  // Behind CGNAT, with IPv6: direct over IPv6 with the hard-NAT site too.
  for (const std::string& ip : cluster.PodIps("m1")) {
    EXPECT_TRUE(cluster.PodPing("e1", ip, 20)) << ip << "\n" << cluster.AgentLog("m1");
  }
  const nlohmann::json m = StatusOnceDirect(cluster, "e1", "m1");
  EXPECT_EQ(m.value("path", ""), "direct") << m.dump();
  EXPECT_TRUE(absl::StrContains(m.value("reason", ""), "direct over IPv6")) << m.dump();
  // No IPv6 at h3's site: relayed, as before.
  EXPECT_TRUE(cluster.PodPing("e1", cluster.PodIp("h3"), 20)) << cluster.AgentLog("e1");
  EXPECT_EQ(cluster.PeerStatus("e1", "h3").value("path", ""), "relay") << cluster.ControllerStatus();
}

// Global IPv6 at both sites, but one firewall drops all UDP over IPv6: the pair was
// decided direct over IPv6 (nothing tells the controller about the firewall), WireGuard's
// handshakes over IPv6 go unanswered, and the pair stays on (or falls back to) the relay:
// pods talk over both families all the same.
class Ipv6FirewallLabTest : public DualStackLabTest, public ::testing::WithParamInterface<const char*> {};

// Dual-stack pods, and IPv6-only ones (whose tunnel probes are ICMPv6: the health that
// says the direct path is dead is theirs).
INSTANTIATE_TEST_SUITE_P(PodFamilies, Ipv6FirewallLabTest,
                         ::testing::Values("10.244.0.0/16,fd00:10:244::/56", "fd00:10:244::/56"));

TEST_P(Ipv6FirewallLabTest, AnIpv6FirewallThatBlocksUdpLeavesThePairOnTheRelay) {
  auto c = Cluster(GetParam(), R"({"stun_servers": 3, "sites": [
      {"name": "edge1", "nat": "hard", "ipv6": "global", "nodes": ["e1"]},
      {"name": "corp", "nat": "hard", "ipv6": "global-udp-blocked", "nodes": ["c1"]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  for (const std::string& ip : cluster.PodIps("c1")) {
    EXPECT_TRUE(cluster.PodPing("e1", ip, 30)) << ip << "\n" << cluster.AgentLog("e1") << cluster.AgentLog("c1");
  }
  for (const std::string& ip : cluster.PodIps("e1")) {
    EXPECT_TRUE(cluster.PodPing("c1", ip, 30)) << ip << "\n" << cluster.AgentLog("c1");
  }
  EXPECT_EQ(cluster.PeerStatus("e1", "c1").value("path", ""), "relay") << cluster.PeerStatus("e1", "c1").dump();
}

// An IPv6-only pod network's direct pairs hold while idle: WireGuard's keepalives raise a
// doubt now and then (we sent, nothing came back yet), which the agent settles with a
// ping through the tunnel, to the peer's IPv6 tunnel address here. Checked every 5 s
// over 35 s of silence (main without ICMPv6 probes: both pairs on the relay by 10 s).
TEST_F(DualStackLabTest, IdleIpv6OnlyPodsKeepTheirDirectPaths) {
  auto c = Cluster("fd00:10:244::/56", R"({"stun_servers": 3, "sites": [
      {"name": "dc", "nat": "none", "nodes": ["d1"]},
      {"name": "home", "nat": "easy", "nodes": ["h1"]},
      {"name": "natgw", "nat": "hard", "nodes": ["a1"]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  const std::vector<std::pair<std::string, std::string>> pairs{{"d1", "h1"}, {"d1", "a1"}};
  for (const auto& [a, b] : pairs) ASSERT_TRUE(cluster.PodPing(a, cluster.PodIp(b), 20)) << a << " -> " << b;
  std::string moved;
  for (int check = 0; check < 8; ++check) {  // bounded: 8 checks, 5 s apart
    if (check > 0) std::this_thread::sleep_for(std::chrono::seconds(5));
    for (const auto& [a, b] : pairs) {
      for (const auto& [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
        const std::string path = cluster.PeerStatus(x, y).value("path", "");
        if (path != "direct") absl::StrAppend(&moved, "check ", check, ": ", x, " -> ", y, " ", path, "; ");
      }
    }
  }
  EXPECT_EQ(moved, "") << cluster.AgentLog("d1");
}

// Hard IPv4 NATs, and IPv6 behind NPTv6 (the nodes have ULAs only, translated to the
// site's global prefix): the agents' IPv6 STUN finds the translated address, which the
// node publishes (server-reflexive), and the pair goes direct over IPv6 through both
// translators and firewalls. A node with a global address of its own says "no NAT".
TEST_F(DualStackLabTest, SitesBehindNptv6GoDirectOverIpv6) {
  auto c = Cluster("10.244.0.0/16,fd00:10:244::/56", R"({"stun_servers": 3, "sites": [
      {"name": "edge1", "nat": "hard", "ipv6": "npt", "nodes": ["n1"]},
      {"name": "edge2", "nat": "hard", "ipv6": "npt", "nodes": ["n2"]},
      {"name": "edge3", "nat": "hard", "ipv6": "global", "nodes": ["g3"]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  EXPECT_EQ(cluster.lab().NodeIp6("n1")->ToString(), "fd00:1::2");
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{{"n1", "n2"}, {"n1", "g3"}}) {
    for (const std::string& ip : cluster.PodIps(b)) {
      EXPECT_TRUE(cluster.PodPing(a, ip, 20)) << a << " -> " << ip << "\n" << cluster.AgentLog(a);
    }
    const nlohmann::json st = StatusOnceDirect(cluster, a, b);
    EXPECT_EQ(st.value("path", ""), "direct") << a << "-" << b << ": " << st.dump();
    EXPECT_TRUE(absl::StrContains(st.value("reason", ""), "direct over IPv6")) << st.dump();
  }
  EXPECT_TRUE(absl::StrContains(cluster.PeerStatus("n1", "n2").value("endpoint", ""), "[2001:db8:2::2]:51820"))
      << "n2's translated address: " << cluster.PeerStatus("n1", "n2").dump();
  const nlohmann::json status = nlohmann::json::parse(cluster.ControllerStatus(), nullptr, false);
  ASSERT_TRUE(status.is_object());
  for (const auto& n : status["nodes"]) {
    const std::string type = n.value("nat6", nlohmann::json::object()).value("type", "");
    EXPECT_EQ(type, n["name"] == "g3" ? "public" : "translated") << n.dump();
  }
}

TEST_F(DualStackLabTest, AnIPv6OnlyClusterWorksEndToEnd) {
  auto c = Cluster("fd00:10:244::/56");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  for (const auto& n : cluster.nodes()) {
    ASSERT_EQ(cluster.PodIps(n).size(), 1u) << n;
    EXPECT_TRUE(IsV6(cluster.PodIp(n))) << cluster.PodIp(n);
  }
  const std::string failed = EveryPairOverEveryFamily(cluster);
  EXPECT_EQ(failed, "") << cluster.AgentLog("aws1");
}

// Nodes without IPv4 at all (IPv6-only subnets: a public one, one behind a stateful
// firewall, one behind a carrier's NAT and a home router, whose IPv6 is routed): they
// join the controller over IPv6, their IPv4 verdict says they have no route, and every
// pair goes direct over IPv6; pods are IPv6-only, as the cluster is.
TEST_F(DualStackLabTest, AnIpv6OnlyClusterOnIpv6OnlyNodes) {
  auto c = Cluster("fd00:10:244::/56", R"({"stun_servers": 3, "sites": [
      {"name": "dc6", "nat": "none", "ipv6": "only", "nodes": ["d1"]},
      {"name": "edge6", "nat": "hard", "ipv6": "only", "nodes": ["e1", "e2"]},
      {"name": "mobile6", "nat": "cgnat", "ipv6": "only", "nodes": ["m1"]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  std::string nodes;
  for (const auto& n : cluster.nodes()) {
    std::string out;
    cluster.lab().ns("n-" + n).Exec("ip -4 addr show scope global; ip -4 route", &out);
    EXPECT_EQ(out, "") << n << " has IPv4";
  }
  // Before any pod sends: each pair's first handshake is made by the agents' ICMPv6 probe
  // through the tunnel (IPv6-only pods: the tunnel addresses are IPv6).
  const std::vector<std::pair<std::string, std::string>> pairs{{"d1", "e1"}, {"e1", "m1"}, {"e1", "e2"}};
  for (const auto& [a, b] : pairs) {
    nlohmann::json st;
    for (int i = 0; i < 75; ++i) {  // bounded: 15 s
      st = cluster.PeerStatus(a, b);
      if (st.contains("lastHandshake")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_TRUE(st.contains("lastHandshake")) << a << "-" << b << ", before pods talk: " << st.dump();
  }
  EXPECT_EQ(EveryPairOverEveryFamily(cluster), "") << cluster.AgentLog("e1");
  for (const auto& [a, b] : pairs) {
    const nlohmann::json st = StatusOnceDirect(cluster, a, b);
    EXPECT_EQ(st.value("path", ""), "direct") << a << "-" << b << ": " << st.dump();
    if (a != "e1" || b != "e2") {  // e1 and e2 share a LAN: direct over it
      EXPECT_TRUE(absl::StrContains(st.value("reason", ""), "direct over IPv6")) << st.dump();
    }
  }
  const std::string status = cluster.ControllerStatus();
  EXPECT_TRUE(absl::StrContains(status, "no route to any of 3 STUN targets")) << status;
  EXPECT_TRUE(absl::StrContains(status, "\"noIPv4\": true")) << status;
  EXPECT_TRUE(absl::StrContains(cluster.PeerStatus("d1", "m1").value("reason", ""),
                                "over IPv4: no IPv4 path: both nodes without IPv4"))
      << cluster.PeerStatus("d1", "m1").dump();
}

}  // namespace
}  // namespace weft::lab
