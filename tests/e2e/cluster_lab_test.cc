// Weft end to end in the NAT lab (root): weft-controller, a weft-agent on every node
// behind its NAT, a pod per node wired by weft-cni; pods reach each other where the
// strategy table says a direct path exists, and the data plane survives the control
// plane going away.
#include <sys/wait.h>

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/wireguard/uapi.h"
#include "tests/lab/child_process.h"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go";  // besides root

class ClusterLabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::MissingForRootTest(kTools).empty()) return;
    auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
        {"name": "dc", "nat": "none", "nodes": ["dc1"]},
        {"name": "home", "nat": "easy", "nodes": ["home1"]},
        {"name": "shop", "nat": "easy", "nodes": ["shop1"]},
        {"name": "natgw", "nat": "hard", "nodes": ["aws1"]},
        {"name": "office", "nat": "easy", "nodes": ["office1", "office2"]}]})");
    auto c = LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY});
    if (!c.ok()) {
      error_ = new std::string(c.status().ToString());
      return;
    }
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
    if (error_ != nullptr) FAIL() << *error_;
  }
  // Pings every 100 ms for `count` pings in the background; returns how many were lost.
  static std::thread PingBackground(const std::string& from, const std::string& to, int count, int* lost) {
    return std::thread([=] {
      std::string out;
      cluster_->Pod(from).Exec(absl::StrCat("ping -i 0.1 -c ", count, " -W 1 ", cluster_->PodIp(to)), &out);
      int received = -1;
      if (auto p = out.find(" received"); p != std::string::npos) {
        size_t b = out.rfind(' ', p - 1);
        received = std::atoi(out.substr(b + 1, p - b - 1).c_str());
      }
      *lost = received < 0 ? count : count - received;
    });
  }
  static LabCluster* cluster_;
  static std::string* error_;
};
LabCluster* ClusterLabTest::cluster_ = nullptr;
std::string* ClusterLabTest::error_ = nullptr;

bool Hard(const std::string& n) { return n == "aws1"; }

TEST_F(ClusterLabTest, PodsReachEachOtherWhereTheStrategyTableSaysDirect) {
  for (const auto& a : cluster_->nodes()) {
    for (const auto& b : cluster_->nodes()) {
      if (a == b) continue;
      // public ↔ anything, easy ↔ easy and same-router pairs are direct; hard ↔ easy
      // (port-restricted) is relay, which has no path until the relay lands.
      const bool direct = a == "dc1" || b == "dc1" || (!Hard(a) && !Hard(b));
      SCOPED_TRACE(a + " -> " + b);
      if (direct) {
        EXPECT_TRUE(cluster_->PodPing(a, cluster_->PodIp(b), 15)) << cluster_->AgentLog(a);
      } else {
        EXPECT_FALSE(cluster_->PodPing(a, cluster_->PodIp(b), 2));
        EXPECT_NE(cluster_->AgentLog(a).find(absl::StrCat("peer ", b, ": none (relayed:")), std::string::npos)
            << cluster_->AgentLog(a);
      }
    }
  }
}

TEST_F(ClusterLabTest, AgentsServeHealthReadinessAndMetrics) {
  std::string out;
  const std::string get = "python3 -c \"import urllib.request,sys;r=urllib.request.urlopen('http://127.0.0.1:9476'+sys.argv[1]);"
                          "print(r.status);print(r.read().decode())\" ";
  ASSERT_EQ(cluster_->lab().ns("n-dc1").Exec(get + "/readyz", &out), 0) << out;
  EXPECT_NE(out.find("200"), std::string::npos) << out;
  // Every pair of the public node direct: at most 15 s after the cluster came up (this test
  // may run first).
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(cluster_->lab().ns("n-dc1").Exec(get + "/metrics", &out), 0) << out;
    if (out.find("weft_agent_peers{path=\"direct\"} 5") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_NE(out.find("weft_agent_controller_connected 1"), std::string::npos) << out;
  EXPECT_NE(out.find("weft_agent_peers{path=\"direct\"} 5"), std::string::npos) << out;
  EXPECT_NE(out.find("mapping=\"none\""), std::string::npos) << out;
  // This machine's kernel has no WireGuard module: auto picked wireguard-go.
  EXPECT_NE(out.find("weft_agent_wireguard_backend_info{backend=\"userspace\"} 1"), std::string::npos) << out;
  // Reconciles come once per burst of changes, not once per message: printed for the record.
  for (const char* m : {"weft_agent_controller_messages_total ", "weft_agent_reconciles_total "}) {
    const size_t at = out.find(std::string("\n") + m);
    ASSERT_NE(at, std::string::npos) << m << out;
    std::printf("%s\n", out.substr(at + 1, out.find('\n', at + 1) - at - 1).c_str());
  }
}

TEST_F(ClusterLabTest, PodsReachTheInternetMasqueraded) {
  // A host outside the cluster, behind the pod's node and its NAT router.
  for (const std::string node : {"home1", "dc1"}) {
    SCOPED_TRACE(node);
    EXPECT_EQ(cluster_->Pod(node).Exec("ping -c1 -W2 " + cluster_->lab().HostIp().ToString()), 0);
  }
}

TEST_F(ClusterLabTest, ControllerServesTheClusterStatusAsJson) {
  std::string out;
  ASSERT_EQ(cluster_->lab().ns("host").Exec(
                "python3 -c \"import urllib.request,json;s=json.load(urllib.request.urlopen('http://127.0.0.1:7080/status'));"
                "n={x['name']:x for x in s['nodes']};print(len(n), n['aws1']['nat']['mapping'], n['dc1']['connected'], n['dc1']['wireguard']);"
                "print([p['reason'] for p in n['home1']['peers'] if p['peer']=='aws1'][0])\"",
                &out),
            0)
      << out;
  EXPECT_NE(out.find("6 endpoint-dependent True userspace"), std::string::npos) << out;
  EXPECT_NE(out.find("relayed: aws1 is behind endpoint-dependent NAT"), std::string::npos) << out;
}

TEST_F(ClusterLabTest, TcpTransferAcrossNats) {
  // 1 MiB from the pod behind one easy NAT to the pod behind another, through WireGuard.
  const std::string server = absl::StrCat(
      "python3 -c \"import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
      "s.bind(('0.0.0.0',5201));s.listen(1);s.settimeout(20);c,_=s.accept();n=0\n"
      "while True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n)\"");
  std::string got;
  std::thread srv([&] { cluster_->Pod("shop1").Exec(server, &got); });
  ASSERT_TRUE(cluster_->PodPing("home1", cluster_->PodIp("shop1"), 15));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string client = absl::StrCat("python3 -c \"import socket;c=socket.create_connection(('", cluster_->PodIp("shop1"),
                                          "',5201),timeout=20);c.sendall(b'x'*1048576);c.close()\"");
  EXPECT_EQ(cluster_->Pod("home1").Exec(client), 0);
  srv.join();
  EXPECT_EQ(got, "1048576\n");
}

TEST_F(ClusterLabTest, ControllerGoneDataPlaneStaysAndResyncChangesNoPeer) {
  ASSERT_TRUE(cluster_->PodPing("home1", cluster_->PodIp("shop1"), 15));
  wireguard::UapiDevice dev(cluster_->WireGuardName("home1"));
  auto before = dev.Get();
  ASSERT_TRUE(before.ok());
  int lost = -1;
  std::thread ping = PingBackground("home1", "shop1", 40, &lost);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  cluster_->StopController();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(cluster_->StartController().ok());
  ping.join();
  EXPECT_EQ(lost, 0) << "pods keep talking while the controller is away";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // agents reconnect and resync
  auto after = dev.Get();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->peers.size(), before->peers.size());
  std::set<std::string> keys_before, keys_after;
  for (const auto& p : before->peers) keys_before.insert(p.public_key.ToHex());
  for (const auto& p : after->peers) keys_after.insert(p.public_key.ToHex());
  EXPECT_EQ(keys_before, keys_after);
  EXPECT_TRUE(cluster_->PodPing("home1", cluster_->PodIp("shop1"), 5));
}

TEST_F(ClusterLabTest, AgentKilledAndRestartedLosesNoPing) {
  ASSERT_TRUE(cluster_->PodPing("office1", cluster_->PodIp("dc1"), 15));
  int lost = -1;
  std::thread ping = PingBackground("office1", "dc1", 40, &lost);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  cluster_->KillAgent("office1");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_TRUE(cluster_->StartAgent("office1").ok());
  ping.join();
  EXPECT_EQ(lost, 0) << cluster_->AgentLog("office1");
  EXPECT_NE(cluster_->AgentLog("office1").find("adopting the running WireGuard device"), std::string::npos);
}

// A controller far away (a 150 ms hold each way in front of it: every exchange of the
// TCP and TLS handshakes takes 300 ms more): the agent joins all the same. gRPC gives a
// connection attempt as long as its minimum reconnect backoff, which the agent once set
// to 100 ms: it never joined a controller more than a few tens of milliseconds away.
TEST(ClusterLabFarTest, AnAgentJoinsAControllerAcrossALongRoundTrip) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [{"name": "far", "nat": "easy", "nodes": ["far1"]}]})");
  ASSERT_TRUE(spec.ok());
  auto c = LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY},
                              /*start_agents=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  ChildProcess far((*c)->lab().ns("host").path(),
                   {WEFT_TCP_BALANCER_BINARY, "--listen", "198.51.100.200:7444", "--backend", "198.51.100.200:7443",
                    "--delay-ms", "150"},
                   (*c)->File("far.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*c)->SetAgentStartTimeout(30);
  absl::Status s = (*c)->StartAgent("far1", {"--controller", "198.51.100.200:7444"});
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace weft::lab
