// Kernel WireGuard, in a kernel that has it: these tests run inside Debian's cloud kernel
// under QEMU (tests/vm/vm-run.sh, ctest label "vm"); on a kernel without the module they
// skip. The device layer through generic netlink (1,000 peers set, read, removed), the
// kernel's WireGuard against wireguard-go, and weft-agent on a NAT lab: auto picks the
// kernel, pods ping across through the controller, an agent SIGKILLed and restarted loses
// no ping (the kernel device and its peers stay), --cleanup removes the device.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_link.h"
#include "tests/netns/netns_harness.h"
#include "lib/wireguard/backend.h"
#include "lib/wireguard/genl_wireguard.h"
#include "lib/wireguard/wireguard_go.h"
#include "lib/testing/slurp.h"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

bool KernelHasWireGuard() {
  auto nl = net::NlSocket::Open();
  if (!nl.ok()) return false;
  if (!net::CreateLink(*nl, "wgvmprobe", "wireguard").ok()) return false;
  (void)net::DeleteLink(*nl, "wgvmprobe");
  return true;
}

#define SKIP_WITHOUT_KERNEL_WIREGUARD()                                                   \
  do {                                                                                   \
    if (getuid() != 0) GTEST_SKIP() << "needs root";                                     \
    if (!KernelHasWireGuard()) GTEST_SKIP() << "this kernel has no WireGuard (run in the vm tier)"; \
  } while (0)

wireguard::Key KeyN(int i) {
  wireguard::Key k;
  k.bytes.fill(0);
  k.bytes[0] = static_cast<uint8_t>(i & 0xff);
  k.bytes[1] = static_cast<uint8_t>(i >> 8);
  k.bytes[31] = 0x40;
  return k;
}

TEST(KernelDeviceVmTest, AThousandPeersSetReadAndRemovedThroughGenericNetlink) {
  SKIP_WITHOUT_KERNEL_WIREGUARD();
  auto nl = net::NlSocket::Open();
  ASSERT_TRUE(nl.ok());
  ASSERT_TRUE(net::CreateLink(*nl, "wgk1000", "wireguard").ok());
  auto dev = wireguard::KernelDevice::Open("wgk1000");
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto priv = wireguard::Key::GeneratePrivate();
  ASSERT_TRUE(priv.ok());
  wireguard::DeviceConfig c{.private_key = *priv, .listen_port = 51999};
  for (int i = 0; i < 1000; ++i) {
    wireguard::PeerConfig p{.public_key = KeyN(i)};
    p.endpoint = net::Endpoint{*net::IpAddress::Parse(absl::StrCat("10.1.", i / 250, ".", i % 250 + 1)), 51820};
    p.persistent_keepalive = 25;
    p.allowed_ips = {*net::IpPrefix::Parse(absl::StrCat("10.200.", i / 256, ".", i % 256, "/32"))};
    c.peers.push_back(p);
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*dev)->Set(c).ok());
  auto st = (*dev)->Get();
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->peers.size(), 1000u);
  EXPECT_EQ(st->listen_port, 51999);
  for (const auto& p : st->peers) {
    ASSERT_EQ(p.allowed_ips.size(), 1u);
    ASSERT_TRUE(p.endpoint.has_value());
    EXPECT_EQ(p.persistent_keepalive, 25);
  }
  std::printf("1,000 peers set and read back through generic netlink in %lld ms (TCG)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  wireguard::DeviceConfig gone;
  for (int i = 0; i < 1000; ++i) gone.peers.push_back({.public_key = KeyN(i), .remove = true});
  ASSERT_TRUE((*dev)->Set(gone).ok());
  st = (*dev)->Get();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->peers.empty());
  EXPECT_TRUE(net::DeleteLink(*nl, "wgk1000").ok());
}

// Pings from pod to pod until one is answered, at most `seconds`.
bool Talks(LabCluster& c, const std::string& from, const std::string& to, int seconds) {
  return c.PodPing(from, c.PodIp(to), seconds);
}

std::string LinkKind(LabCluster& c, const std::string& node) {
  std::string out;
  c.lab().ns("n-" + node).Exec(absl::StrCat("ip -d link show ", c.WireGuardName(node), " 2>&1"), &out);
  if (out.find("\n    wireguard ") != std::string::npos) return "kernel";
  if (out.find("\n    tun ") != std::string::npos) return "userspace";
  return out;
}

// Two nodes, each behind a NAT of `nat` ("easy": a direct pair; "hard": a relayed one,
// through a weft-relay); k2's agent gets `second` as extra flags.
std::unique_ptr<LabCluster> TwoNodes(const std::vector<std::string>& second = {}, const std::string& nat = "easy") {
  auto spec = ParseLabSpec(absl::StrCat(R"({"stun_servers": 3, "sites": [
      {"name": "home", "nat": ")", nat, R"(", "nodes": ["k1"]},
      {"name": "office", "nat": ")", nat, R"(", "nodes": ["k2"]}]})"));
  EXPECT_TRUE(spec.ok());
  ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY};
  if (nat == "hard") bin = {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1};
  auto c = LabCluster::Create(*spec, bin, /*start_agents=*/false);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return nullptr;
  (*c)->SetAgentStartTimeout(60);  // software emulation: everything is several times slower
  for (const std::string n : {"k1", "k2"}) {
    absl::Status s = (*c)->StartAgent(n, n == "k2" ? second : std::vector<std::string>{});
    EXPECT_TRUE(s.ok()) << s << (*c)->AgentLog(n) << testing::Slurp((*c)->File("controller.log"));
    if (!s.ok()) return nullptr;
    EXPECT_TRUE((*c)->AddPod(n).ok());
  }
  return *std::move(c);
}

bool MissingKernelWireGuardOrTools(std::string* why) {
  if (getuid() != 0) *why = "needs root";
  else if (!KernelHasWireGuard()) *why = "this kernel has no WireGuard (run in the vm tier)";
  else *why = testing::MissingForRootTest("turnserver wireguard-go");
  return !why->empty();
}

// Both nodes on the kernel's WireGuard (auto), one cluster for the suite.
class KernelPairVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!MissingKernelWireGuardOrTools(&why)) cluster_ = TwoNodes().release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    std::string why;
    if (MissingKernelWireGuardOrTools(&why)) GTEST_SKIP() << why;
    ASSERT_NE(cluster_, nullptr);
  }
  static LabCluster* cluster_;
};
LabCluster* KernelPairVmTest::cluster_ = nullptr;

TEST_F(KernelPairVmTest, AutoPicksTheKernelAndPodsPingAcross) {
  LabCluster& c = *cluster_;
  for (const char* n : {"k1", "k2"}) {
    EXPECT_EQ(LinkKind(c, n), "kernel") << c.AgentLog(n);
    EXPECT_NE(c.AgentLog(n).find("kernel WireGuard (the kernel makes the device)"), std::string::npos) << c.AgentLog(n);
  }
  EXPECT_TRUE(Talks(c, "k1", "k2", 60)) << c.AgentLog("k1") << c.AgentLog("k2");
  EXPECT_TRUE(Talks(c, "k2", "k1", 30)) << c.AgentLog("k2");
}

// The kernel device is not the agent's process: SIGKILL the agent, start it again a second
// later, and the pods' pings (100 ms apart) all come back; the new agent adopts the
// device with its peers. Then --cleanup removes the device.
TEST_F(KernelPairVmTest, AnAgentKilledAndRestartedLosesNoPingAndCleanupRemovesTheDevice) {
  LabCluster& c = *cluster_;
  ASSERT_TRUE(Talks(c, "k1", "k2", 60)) << c.AgentLog("k1") << c.AgentLog("k2");
  ASSERT_TRUE(Talks(c, "k2", "k1", 30)) << c.AgentLog("k2");
  constexpr int kPings = 40;
  std::string out;
  std::thread ping([&] { c.Pod("k1").Exec(absl::StrCat("ping -i 0.1 -c ", kPings, " -W 1 ", c.PodIp("k2")), &out); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  c.KillAgent("k1");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Status started = c.StartAgent("k1");
  ping.join();
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(LostPings(out, kPings), 0) << out << c.AgentLog("k1");
  EXPECT_NE(c.AgentLog("k1").find("adopting the running WireGuard device"), std::string::npos) << c.AgentLog("k1");
  EXPECT_EQ(LinkKind(c, "k1"), "kernel");
  c.StopAgent("k2");
  const std::string cleaned = c.CleanupNode("k2");
  std::string link;
  EXPECT_NE(c.lab().ns("n-k2").Exec(absl::StrCat("ip link show ", c.WireGuardName("k2"), " 2>&1"), &link), 0)
      << "the kernel device is still there after --cleanup: " << link << cleaned;
}

// Two hard NATs: the pair goes through the relay, the kernel device sending to the
// agent's relay proxies on loopback (the path machine samples the kernel's counters and
// handshakes). An agent killed and restarted loses no ping: the kernel device and the
// relay forwarder both outlive it.
TEST(RelayedPairVmTest, ARelayedPairThroughKernelDevicesLosesNoPingWhileAnAgentRestarts) {
  std::string why;
  if (MissingKernelWireGuardOrTools(&why)) GTEST_SKIP() << why;
  auto c = TwoNodes({}, "hard");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(Talks(*c, "k1", "k2", 60)) << c->AgentLog("k1") << c->AgentLog("k2");
  ASSERT_TRUE(Talks(*c, "k2", "k1", 30)) << c->AgentLog("k2");
  EXPECT_EQ(LinkKind(*c, "k1"), "kernel");
  EXPECT_NE(c->AgentLog("k1").find("peer k2: relay"), std::string::npos) << c->AgentLog("k1");
  constexpr int kPings = 40;
  std::string out;
  std::thread ping([&] { c->Pod("k1").Exec(absl::StrCat("ping -i 0.1 -c ", kPings, " -W 1 ", c->PodIp("k2")), &out); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  c->KillAgent("k1");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Status started = c->StartAgent("k1");
  ping.join();
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(LostPings(out, kPings), 0) << out << c->AgentLog("k1");
  EXPECT_NE(c->AgentLog("k1").find("adopting the running relay forwarder"), std::string::npos) << c->AgentLog("k1");
}

// One node on the kernel's WireGuard, the other on wireguard-go: the same protocol. Then
// that node moves to the kernel (its agent restarted with auto, as after an upgrade from a
// wireguard-go node): wireguard-go's device is replaced by a kernel one, and the pods talk
// again.
TEST(MixedPairVmTest, KernelAndWireguardGoPeersInteroperateAndANodeMovesToTheKernel) {
  std::string why;
  if (MissingKernelWireGuardOrTools(&why)) GTEST_SKIP() << why;
  auto c = TwoNodes({"--wireguard=userspace"});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(LinkKind(*c, "k1"), "kernel") << c->AgentLog("k1");
  EXPECT_EQ(LinkKind(*c, "k2"), "userspace") << c->AgentLog("k2");
  EXPECT_TRUE(Talks(*c, "k1", "k2", 60)) << c->AgentLog("k1") << c->AgentLog("k2");
  EXPECT_TRUE(Talks(*c, "k2", "k1", 30)) << c->AgentLog("k2");

  c->StopAgent("k2");
  ASSERT_TRUE(c->StartAgent("k2").ok()) << c->AgentLog("k2");
  // The conflist is there from before: wait for the new agent itself (at most 60 s).
  for (int i = 0; i < 600 && c->AgentLog("k2").find("replacing the userspace device there") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(c->AgentLog("k2").find("replacing the userspace device there"), std::string::npos) << c->AgentLog("k2");
  EXPECT_EQ(LinkKind(*c, "k2"), "kernel") << c->AgentLog("k2");
  EXPECT_TRUE(Talks(*c, "k2", "k1", 60)) << c->AgentLog("k2") << c->AgentLog("k1");
  EXPECT_TRUE(Talks(*c, "k1", "k2", 30)) << c->AgentLog("k1");
  EXPECT_NE(system(absl::StrCat("pgrep -f '[w]ireguard-go .*", c->WireGuardName("k2"), "' >/dev/null").c_str()), 0)
      << "wireguard-go still runs for the replaced device";
}

}  // namespace
}  // namespace weft::lab
