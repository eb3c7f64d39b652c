// SNAT-randomization awareness in the NAT lab (root), one row per cause:
//   (a) a router with `masquerade random,fully-random` (a NAT gateway);
//   (b) the node's own `masquerade random,fully-random` (kube-proxy / AWS VPC CNI style),
//       before and after Weft's mitigation, idempotent across restarts, gone when off;
//   (d) seeds/004's conntrack collision on a router that lets unsolicited packets in.
// Row (c), the aws-node DaemonSet and an aws:// provider ID, needs the Kubernetes API:
// tests/kube/controller_kube_test.cc.
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go nft";  // besides root

using nlohmann::json;

class SnatLabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::MissingForRootTest(kTools).empty()) return;
    auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
        {"name": "dc", "nat": "none", "nodes": ["dc1"]},
        {"name": "home", "nat": "easy", "nodes": ["home1"]},
        {"name": "natgw", "nat": "hard", "nodes": ["gw1"]},
        {"name": "kube", "nat": "easy", "node_snat": "random-fully", "nodes": ["k1"]},
        {"name": "open", "nat": "easy-open", "nodes": ["o1"]}]})");
    auto c = LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY},
                                /*start_agents=*/false);
    if (!c.ok()) {
      error_ = new std::string(c.status().ToString());
      return;
    }
    cluster_ = c->release();
    for (const char* n : {"dc1", "home1"}) {
      if (absl::Status s = cluster_->StartAgent(n); !s.ok()) error_ = new std::string(s.ToString());
      else if (absl::Status p = cluster_->AddPod(n); !p.ok()) error_ = new std::string(p.ToString());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
    if (error_ != nullptr) FAIL() << *error_;
  }

  // The controller's view of `node` (its /status entry), or null.
  static json Node(const std::string& node) {
    json s = json::parse(cluster_->ControllerStatus(), nullptr, false);
    if (!s.is_object()) return nullptr;
    for (const auto& n : s["nodes"]) {
      if (n["name"] == node) return n;
    }
    return nullptr;
  }
  static std::string PathTo(const json& n, const std::string& peer) {
    for (const auto& p : n["peers"]) {
      if (p["peer"] == peer) return p["decision"].get<std::string>() + ": " + p["reason"].get<std::string>();
    }
    return "";
  }
  // Polls the controller every 50 ms for at most `ms` until `f(node's status)`.
  template <typename F>
  static bool WaitFor(const std::string& node, F f, int ms) {
    for (int waited = 0; waited <= ms; waited += 50) {
      json n = Node(node);
      if (!n.is_null() && f(n)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  static std::string Nft(const std::string& node, const std::string& cmd) {
    std::string out;
    cluster_->lab().ns("n-" + node).Exec(cmd, &out);
    return out;
  }

  static LabCluster* cluster_;
  static std::string* error_;
};
LabCluster* SnatLabTest::cluster_ = nullptr;
std::string* SnatLabTest::error_ = nullptr;

// (a) Behind a NAT gateway: hard, said so within 5 s of the agent starting, with the
// plan: one-sided towards the public node, no path (relay) to the port-restricted one,
// and no hole punched in vain.
TEST_F(SnatLabTest, RowA_NatGatewayIsHardAndPlannedAroundWithinFiveSeconds) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster_->StartAgent("gw1").ok());
  ASSERT_TRUE(WaitFor("gw1", [](const json& n) {
    return n["nat"]["mapping"] == "endpoint-dependent" && n["snat"]["randomized"] == true && n["peers"].size() == 2;
  }, 10000)) << cluster_->AgentLog("gw1");
  const auto took = std::chrono::steady_clock::now() - start;
  std::printf("gw1: verdict and plan %lld ms after the agent started\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_LT(took, std::chrono::seconds(5));
  json n = Node("gw1");
  EXPECT_EQ(n["snat"]["reason"], "EndpointDependentNat");
  EXPECT_NE(n["snat"]["sources"].dump().find("active: STUN sees a different public port"), std::string::npos);
  EXPECT_NE(n["snat"]["message"].get<std::string>().find("public IP"), std::string::npos);
  EXPECT_EQ(PathTo(n, "dc1").rfind("direct", 0), 0u) << PathTo(n, "dc1");
  EXPECT_EQ(PathTo(n, "home1").rfind("relay", 0), 0u) << PathTo(n, "home1");
  ASSERT_TRUE(cluster_->AddPod("gw1").ok());
  EXPECT_TRUE(cluster_->PodPing("gw1", cluster_->PodIp("dc1"), 10));
  // The admin's question, "why is gw1 -> home1 relayed?", answered by weftctl.
  std::string why;
  ASSERT_EQ(cluster_->lab().ns("host").Exec(
                absl::StrCat(WEFTCTL_BINARY, " explain --status http://127.0.0.1:7080/status gw1 home1"), &why),
            0)
      << why;
  EXPECT_NE(why.find("decided relay\n"), std::string::npos) << why;  // no relay in this lab: no path
  EXPECT_NE(why.find("why: relayed: gw1 is behind endpoint-dependent NAT"), std::string::npos) << why;
  EXPECT_NE(why.find("SNAT randomization: yes (EndpointDependentNat)"), std::string::npos) << why;
  // No direct attempt for the pair the table relays: neither side was given an endpoint.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string log = cluster_->AgentLog("gw1");
  EXPECT_NE(log.find("peer home1: none"), std::string::npos) << log;
  EXPECT_EQ(log.find("peer home1: direct"), std::string::npos) << log;
  EXPECT_EQ(cluster_->AgentLog("home1").find("peer gw1: direct"), std::string::npos);
}

// (b) The node's own randomizing rule: found and named; with the mitigation the
// verdict goes from hard to easy and the pair with an easy node goes direct; the rule is
// installed once however often the agent restarts, and removed when switched off.
TEST_F(SnatLabTest, RowB_NodeRuleFoundThenMitigated) {
  ASSERT_TRUE(cluster_->StartAgent("k1").ok());
  ASSERT_TRUE(WaitFor("k1", [](const json& n) { return n["snat"]["reason"] == "NodeRule"; }, 10000))
      << cluster_->AgentLog("k1") << cluster_->ControllerStatus();
  json n = Node("k1");
  EXPECT_EQ(n["nat"]["mapping"], "endpoint-dependent");
  EXPECT_NE(n["snat"]["nodeRules"].dump().find("table ip nodesnat chain post"), std::string::npos) << n.dump();
  EXPECT_NE(n["snat"]["message"].get<std::string>().find("snatMitigation=true"), std::string::npos);
  EXPECT_EQ(PathTo(n, "home1").rfind("relay", 0), 0u) << PathTo(n, "home1");
  EXPECT_EQ(Nft("k1", "nft list table ip weft-snat 2>&1").find("masquerade"), std::string::npos);  // off by default

  cluster_->StopAgent("k1");
  ASSERT_TRUE(cluster_->StartAgent("k1", {"--snat-mitigation"}).ok());
  ASSERT_TRUE(WaitFor("k1", [](const json& n) {
    return n["snat"]["reason"] == "Mitigated" && n["nat"]["mapping"] == "endpoint-independent";
  }, 15000)) << cluster_->AgentLog("k1") << cluster_->ControllerStatus();
  n = Node("k1");
  EXPECT_EQ(n["snat"]["mitigationInstalled"], true);
  EXPECT_EQ(n["snat"]["natBeforeMitigation"], "hard");
  EXPECT_NE(n["snat"]["message"].get<std::string>().find("from hard to easy"), std::string::npos);
  EXPECT_EQ(PathTo(n, "home1").rfind("direct", 0), 0u) << PathTo(n, "home1");
  ASSERT_TRUE(cluster_->AddPod("k1").ok());
  EXPECT_TRUE(cluster_->PodPing("k1", cluster_->PodIp("home1"), 10)) << cluster_->AgentLog("k1");
  // Only the WireGuard port's packets are kept: the rule names the port.
  EXPECT_NE(Nft("k1", "nft list table ip weft-snat").find("udp sport 51820 masquerade"), std::string::npos);

  cluster_->StopAgent("k1");
  ASSERT_TRUE(cluster_->StartAgent("k1", {"--snat-mitigation"}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // a NAT round
  const std::string table = Nft("k1", "nft list table ip weft-snat");
  size_t rules = 0;
  for (size_t p = table.find("masquerade"); p != std::string::npos; p = table.find("masquerade", p + 1)) ++rules;
  EXPECT_EQ(rules, 1u) << table;
  EXPECT_EQ(Nft("k1", "nft list tables").find("weft-snat"), Nft("k1", "nft list tables").rfind("weft-snat"));

  cluster_->StopAgent("k1");
  ASSERT_TRUE(cluster_->StartAgent("k1").ok());  // switched off
  ASSERT_TRUE(WaitFor("k1", [](const json& n) { return n["snat"]["mitigationInstalled"] == false; }, 10000));
  for (int i = 0; i < 40 && Nft("k1", "nft list tables").find("weft-snat") != std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Nft("k1", "nft list tables").find("weft-snat"), std::string::npos);
}

// Uninstall: the node is left as it was: no mitigation rule, no egress table, no
// WireGuard device, no conflist, no key.
TEST_F(SnatLabTest, RowB_UninstallLeavesTheNodeClean) {
  cluster_->StopAgent("k1");
  ASSERT_TRUE(cluster_->StartAgent("k1", {"--snat-mitigation"}).ok());
  ASSERT_TRUE(WaitFor("k1", [](const json& n) { return n["snat"]["mitigationInstalled"] == true; }, 15000));
  cluster_->StopAgent("k1");
  EXPECT_NE(Nft("k1", "nft list tables").find("weft-snat"), std::string::npos) << "a stop is not an uninstall";
  const std::string out = cluster_->CleanupNode("k1");
  EXPECT_NE(out.find("deleted nftables table ip weft-snat"), std::string::npos) << out;
  const std::string tables = Nft("k1", "nft list tables");
  EXPECT_EQ(tables.find("weft-snat"), std::string::npos) << tables;
  EXPECT_EQ(tables.find("table inet weft\n"), std::string::npos) << tables;
  EXPECT_NE(tables.find("nodesnat"), std::string::npos) << "the node's own rules stay";
  EXPECT_EQ(Nft("k1", "ip link show " + cluster_->WireGuardName("k1") + " 2>&1").find("state"), std::string::npos);
  EXPECT_NE(out.find("10-weft.conflist"), std::string::npos) << out;
  EXPECT_NE(out.find("emptied"), std::string::npos) << out;
}

// (d) seeds/004: a packet from dc1's WireGuard port reaches o1's router first; the router
// (no input firewall) binds its public port 51820 to that conversation, so when o1 sends
// to dc1 the NAT must pick another port, for dc1 only. STUN still sees 51820 kept.
TEST_F(SnatLabTest, RowD_ConntrackCollisionReproducedAndReported) {
  const std::string wan = cluster_->lab().WanIp("open").ToString();
  std::string out;
  ASSERT_EQ(cluster_->lab().ns("n-dc1").Exec(
                absl::StrCat("python3 -c \"import socket,struct;s=socket.socket(socket.AF_INET,socket.SOCK_RAW,"
                             "socket.IPPROTO_UDP);s.sendto(struct.pack('!HHHH',51820,51820,12,0)+b'weft',('",
                             wan, "',0))\""),
                &out),
            0)
      << out;
  ASSERT_TRUE(cluster_->StartAgent("o1").ok());
  ASSERT_TRUE(cluster_->AddPod("o1").ok());
  EXPECT_TRUE(cluster_->PodPing("o1", cluster_->PodIp("dc1"), 10)) << cluster_->AgentLog("o1");
  ASSERT_TRUE(WaitFor("o1", [](const json& n) { return n["snat"]["reason"] == "ConntrackCollision"; }, 10000))
      << cluster_->ControllerStatus();
  json n = Node("o1");
  EXPECT_EQ(n["nat"]["mapping"], "endpoint-independent");
  EXPECT_EQ(n["nat"]["reflexive"], wan + ":51820");
  EXPECT_NE(n["snat"]["sources"].dump().find("conntrack collision: peer dc1 sees " + wan + ":"), std::string::npos)
      << n.dump();
  EXPECT_NE(n["snat"]["message"].get<std::string>().find("unsolicited"), std::string::npos);
}

}  // namespace
}  // namespace weft::lab
