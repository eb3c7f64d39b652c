// Path MTU in the NAT lab (root). The node's own uplink sets the WireGuard and pod MTU;
// a lower link further on (a router's WAN of 1280-1492 that drops ICMP "fragmentation
// needed", as so many do) is found by probing through the tunnel, per peer, and put on
// the routes to that peer's pods: full-size TCP crosses it, direct and relayed, both ways.
#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go python3";
constexpr int kTenMiB = 10 * 1024 * 1024;
const std::string kScripts = WEFT_MTU_SCRIPTS;

// The lab's pods are dual-stack: the first address IPv4, the second IPv6.
std::string PodAddress(LabCluster& c, const std::string& node, int family) {
  return family == 6 ? c.PodIps(node).at(1) : c.PodIp(node);
}

int DeviceMtu(LabCluster& c, const std::string& node) {
  std::string out;
  c.lab().ns("n-" + node).Exec("cat /sys/class/net/" + c.WireGuardName(node) + "/mtu 2>/dev/null || "
                               "ip -o link show " + c.WireGuardName(node), &out);
  if (auto p = out.find(" mtu "); p != std::string::npos) return std::atoi(out.c_str() + p + 5);
  return std::atoi(out.c_str());
}

// `bytes` over TCP from `from`'s pod to `to`'s, `delay` seconds between 64 KiB chunks
// (0: full speed); what arrived. Gives up after `stall` seconds without progress.
// `family` 6: to the pod's IPv6 address.
int64_t Transfer(LabCluster& c, const std::string& from, const std::string& to, int64_t bytes, int stall = 15,
                 double delay = 0, int family = 4) {
  std::string got;
  std::thread sink([&] { c.Pod(to).Exec(absl::StrCat("python3 ", kScripts, "/tcp_sink.py 5201 ", stall), &got); });
  (void)c.Pod(from).Exec(absl::StrCat("python3 ", kScripts, "/tcp_source.py ", PodAddress(c, to, family), " 5201 ",
                                      bytes, " ", stall, " ", delay));
  sink.join();
  return std::atoll(got.c_str());
}

// One datagram of `size` bytes (DF) from `from`'s pod to `to`'s: the size that arrived, 0: none.
int Datagram(LabCluster& c, const std::string& from, const std::string& to, int size, int family = 4) {
  std::string got;
  std::thread recv([&] {
    c.Pod(to).Exec(absl::StrCat("python3 ", kScripts, "/udp_probe.py recv 5202 3 ", family), &got);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (void)c.Pod(from).Exec(
      absl::StrCat("python3 ", kScripts, "/udp_probe.py send ", PodAddress(c, to, family), " 5202 ", size));
  recv.join();
  return std::atoi(got.c_str());
}

// For a failure's reader: the node's DF-clearing rule (its counter) and IPv6 route MTUs.
std::string FragmentBandState(LabCluster& c, const std::string& node) {
  std::string out;
  c.lab().ns("n-" + node).Exec("nft list chain inet weft wireguard_df 2>&1; ip -6 route show | grep mtu", &out);
  return absl::StrCat(node, ":\n", out);
}

// The route MTU on `node` towards `peer`'s pods (0: none, the device's applies).
int RouteMtu(LabCluster& c, const std::string& node, const std::string& peer, int family = 4) {
  std::string out;
  c.lab().ns("n-" + node).Exec(absl::StrCat("ip -", family, " route get ", PodAddress(c, peer, family)), &out);
  if (auto p = out.find(" mtu "); p != std::string::npos) return std::atoi(out.c_str() + p + 5);
  return 0;
}

TEST(MtuLabTest, UplinkMtuSetsTunnelAndPodMtu) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "vpn", "nat": "easy", "nodes": ["low1"]},
      {"name": "dc", "nat": "none", "nodes": ["dc1"]}]})");
  ASSERT_TRUE(spec.ok());
  auto c = LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY},
                              /*start_agents=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_EQ(cluster.lab().ns("n-low1").Exec("ip link set eth0 mtu 1400"), 0);
  for (const char* n : {"low1", "dc1"}) {
    ASSERT_TRUE(cluster.StartAgent(n).ok()) << cluster.AgentLog(n);
    ASSERT_TRUE(cluster.AddPod(n).ok());
  }
  auto low = nlohmann::json::parse(cluster.Conflist("low1"), nullptr, false);
  auto dc = nlohmann::json::parse(cluster.Conflist("dc1"), nullptr, false);
  ASSERT_TRUE(low.is_object() && dc.is_object());
  EXPECT_EQ(low["plugins"][0]["mtu"], 1320) << cluster.AgentLog("low1");
  EXPECT_EQ(dc["plugins"][0]["mtu"], 1420) << cluster.AgentLog("dc1");
  EXPECT_EQ(DeviceMtu(cluster, "low1"), 1320);
  EXPECT_EQ(DeviceMtu(cluster, "dc1"), 1420);
  EXPECT_NE(cluster.AgentLog("low1").find("uplink MTU 1400: WireGuard and pod MTU 1320"), std::string::npos);

  // 1 MiB of full-size segments each way between the pods.
  ASSERT_TRUE(cluster.PodPing("low1", cluster.PodIp("dc1"), 15));
  for (auto [from, to] : {std::pair{"low1", "dc1"}, std::pair{"dc1", "low1"}}) {
    SCOPED_TRACE(absl::StrCat(from, " -> ", to));
    const std::string server =
        "python3 -c \"import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('0.0.0.0',5201));s.listen(1);s.settimeout(20);c,_=s.accept();n=0\n"
        "while True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n)\"";
    std::string got;
    std::thread srv([&] { cluster.Pod(to).Exec(server, &got); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::string client = absl::StrCat("python3 -c \"import socket;c=socket.create_connection(('",
                                            cluster.PodIp(to), "',5201),timeout=20);c.sendall(b'x'*1048576);c.close()\"");
    EXPECT_EQ(cluster.Pod(from).Exec(client), 0);
    srv.join();
    EXPECT_EQ(got, "1048576\n");
  }
}

// A site behind a WAN of `wan_mtu` in each way of reaching it: direct (l1 <-> dc1), relayed
// over UDP (lh1 <-> h2, both behind hard NATs) and relayed over TCP (lt1, whose UDP is
// blocked, <-> dc1).
absl::StatusOr<std::unique_ptr<LabCluster>> LowWanLab(int wan_mtu, const std::vector<std::string>& agent_flags = {}) {
  auto spec = ParseLabSpec(absl::StrCat(R"({"stun_servers": 3, "sites": [
      {"name": "low", "nat": "easy", "wan_mtu": )", wan_mtu, R"(, "nodes": ["l1"]},
      {"name": "lowgw", "nat": "hard", "wan_mtu": )", wan_mtu, R"(, "nodes": ["lh1"]},
      {"name": "lowfw", "nat": "udp-blocked", "wan_mtu": )", wan_mtu, R"(, "nodes": ["lt1"]},
      {"name": "natgw", "nat": "hard", "nodes": ["h2"]},
      {"name": "dc", "nat": "none", "nodes": ["dc1"]}]})"));
  if (!spec.ok()) return spec.status();
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1};
  bin.cluster_cidr = "10.244.0.0/16,fd00:10:244::/56";  // dual-stack pods
  auto c = LabCluster::Create(*spec, bin, /*start_agents=*/false);
  if (!c.ok()) return c.status();
  for (const char* n : {"dc1", "h2", "l1", "lh1", "lt1"}) {
    if (absl::Status s = (*c)->StartAgent(n, agent_flags); !s.ok()) return s;
    if (absl::Status s = (*c)->AddPod(n); !s.ok()) return s;
  }
  return c;
}

struct Pair {
  const char* a;
  const char* b;
  const char* path;  // what WireGuard must use
};
constexpr Pair kPairs[] = {{"l1", "dc1", "direct"}, {"lh1", "h2", "relay"}, {"lt1", "dc1", "relay-tcp"}};

class LowWanTest : public ::testing::TestWithParam<int> {};

TEST_P(LowWanTest, FullSizeTrafficCrossesIt) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  const int wan = GetParam();
  auto c = LowWanLab(wan);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  for (const Pair& p : kPairs) {
    SCOPED_TRACE(absl::StrCat(p.a, " <-> ", p.b, " (", p.path, "), WAN ", wan));
    ASSERT_TRUE(cluster.PodPing(p.a, cluster.PodIp(p.b), 30)) << cluster.AgentLog(p.a);
    ASSERT_TRUE(cluster.PodPing(p.b, cluster.PodIp(p.a), 15)) << cluster.AgentLog(p.b);
    // Both sides found the path's MTU and report it (searches take a few seconds).
    nlohmann::json ab, ba;
    for (int i = 0; i < 150; ++i) {
      ab = cluster.PeerStatus(p.a, p.b);
      ba = cluster.PeerStatus(p.b, p.a);
      if (ab.value("path", "") == p.path && ab.value("pathMtu", 0) > 0 && ba.value("pathMtu", 0) > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(ab.value("path", ""), p.path) << ab.dump();
    const int ab_mtu = ab.value("pathMtu", 0), ba_mtu = ba.value("pathMtu", 0);
    if (std::string(p.path) == "relay-tcp") {
      // A stream has no datagram limit: the relay's TCP segments are kept small instead.
      EXPECT_EQ(ab_mtu, DeviceMtu(cluster, p.a)) << ab.dump();
    } else {
      // WireGuard over IPv4 takes 60 bytes, TURN's ChannelData 4 more, and WireGuard pads to 16.
      EXPECT_LE(ab_mtu, wan - 60) << ab.dump();
      EXPECT_GE(ab_mtu, wan - 60 - 4 - 32) << ab.dump();
      EXPECT_LE(ba_mtu, wan - 60) << ba.dump();
      EXPECT_GE(ba_mtu, wan - 60 - 4 - 32) << ba.dump();
      EXPECT_EQ(RouteMtu(cluster, p.a, p.b), ab_mtu < DeviceMtu(cluster, p.a) ? ab_mtu : 0);
    }
    // 10 MiB each way, and datagrams of the size found.
    EXPECT_EQ(Transfer(cluster, p.a, p.b, kTenMiB), kTenMiB) << cluster.AgentLog(p.a);
    EXPECT_EQ(Transfer(cluster, p.b, p.a, kTenMiB), kTenMiB) << cluster.AgentLog(p.b);
    EXPECT_EQ(Datagram(cluster, p.a, p.b, ab_mtu), ab_mtu);
    EXPECT_EQ(Datagram(cluster, p.b, p.a, ba_mtu), ba_mtu);
    // IPv6 pods through the same tunnel: the route carries the path MTU too (IPv6's
    // minimum of 1280 at least).
    const int ab6 = RouteMtu(cluster, p.a, p.b, 6);
    if (std::string(p.path) != "relay-tcp") {
      EXPECT_EQ(ab6, ab_mtu < DeviceMtu(cluster, p.a) ? std::max(ab_mtu, 1280) : 0);
    }
    // Below IPv6's minimum (WAN 1280), IPv6 pods' full-size packets cross by the narrow
    // link fragmenting them: their WireGuard datagrams go without DF (fragment band).
    EXPECT_EQ(Transfer(cluster, p.a, p.b, kTenMiB, 15, 0, 6), kTenMiB)
        << "IPv6\n" << cluster.AgentLog(p.a) << FragmentBandState(cluster, p.a) << FragmentBandState(cluster, p.b);
    EXPECT_EQ(Transfer(cluster, p.b, p.a, kTenMiB, 15, 0, 6), kTenMiB)
        << "IPv6\n" << cluster.AgentLog(p.b) << FragmentBandState(cluster, p.a) << FragmentBandState(cluster, p.b);
    const int v6_size = ab6 > 0 ? ab6 : DeviceMtu(cluster, p.a);
    EXPECT_EQ(Datagram(cluster, p.a, p.b, v6_size, 6), v6_size) << "IPv6";
    const int ba6 = RouteMtu(cluster, p.b, p.a, 6);
    const int v6_back = ba6 > 0 ? ba6 : DeviceMtu(cluster, p.b);
    EXPECT_EQ(Datagram(cluster, p.b, p.a, v6_back, 6), v6_back) << "IPv6";
  }
}

INSTANTIATE_TEST_SUITE_P(Wan, LowWanTest, ::testing::Values(1280, 1380, 1460, 1492));

// What Weft did before path MTU discovery (and does with --mtu-probe-port=0): the same
// lab blackholes full-size TCP on the direct pair, while pings pass.
TEST(MtuLabTest, WithoutDiscoveryFullSizeTcpIsBlackholed) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  auto c = LowWanLab(1380, {"--mtu-probe-port=0"});
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_TRUE(cluster.PodPing("l1", cluster.PodIp("dc1"), 30));
  EXPECT_EQ(RouteMtu(cluster, "l1", "dc1"), 0);
  EXPECT_LT(Transfer(cluster, "l1", "dc1", kTenMiB, 5), kTenMiB);
}

// The WAN shrinks under a running transfer: found and applied within 10 s, and the
// transfer completes.
TEST(MtuLabTest, MtuLoweredMidRun) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  auto c = LowWanLab(1500);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_TRUE(cluster.PodPing("l1", cluster.PodIp("dc1"), 30));
  ASSERT_TRUE(cluster.PodPing("dc1", cluster.PodIp("l1"), 15));
  for (int i = 0; i < 50 && cluster.PeerStatus("l1", "dc1").value("pathMtu", 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(RouteMtu(cluster, "l1", "dc1"), 0);
  // 24 MiB at about 2.5 MiB/s: the link changes under it, 3 s in.
  const int64_t total = 24ll * 1024 * 1024;
  int64_t got = 0;
  std::thread transfer([&] { got = Transfer(cluster, "l1", "dc1", total, 30, 0.025); });
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSERT_TRUE(cluster.lab().SetWanMtu("low", 1380).ok());
  const auto lowered = std::chrono::steady_clock::now();
  int applied = 0;
  while (std::chrono::steady_clock::now() - lowered < std::chrono::seconds(20)) {
    applied = RouteMtu(cluster, "l1", "dc1");
    if (applied > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - lowered);
  std::printf("MTU lowered to 1380: route MTU %d on l1 after %lld ms\n", applied, static_cast<long long>(took.count()));
  EXPECT_GT(applied, 0) << cluster.AgentLog("l1");
  EXPECT_LE(applied, 1320);
  EXPECT_LE(took.count(), 10000) << cluster.AgentLog("l1");
  transfer.join();
  EXPECT_EQ(got, total) << cluster.AgentLog("l1");
}

}  // namespace
}  // namespace weft::lab
