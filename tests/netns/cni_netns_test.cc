// weft-cni against real namespaces, veths and routes (root). Each test makes a fresh
// "node" namespace, execs the plugin inside it as a runtime would, and checks from the
// pod's side.
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/netns/netns_harness.h"

namespace weft::testing {
namespace {

using nlohmann::json;

class CniNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root (network namespaces)";
    node_ = std::make_unique<TestNetns>("node");
    data_dir_ = "/tmp/" + node_->name() + "-data";
  }
  void TearDown() override {
    pods_.clear();
    node_.reset();
    std::filesystem::remove_all(data_dir_);
  }

  std::string Config(const std::string& cidrs = R"(["10.244.1.0/24"])",
                     const std::string& version = "1.0.0", const std::string& extra = "") {
    return R"({"cniVersion":")" + version + R"(","name":"weftnet","type":"weft","podCIDRs":)" + cidrs +
           R"(,"mtu":1420,"dataDir":")" + data_dir_ + "\"" + extra + "}";
  }

  TestNetns& NewPod(const std::string& label) {
    pods_.push_back(std::make_unique<TestNetns>(label));
    return *pods_.back();
  }

  CniOutcome Cni(const std::string& cmd, const std::string& cid, const std::string& netns,
                 const std::string& config, const std::string& ifname = "eth0") {
    return RunCni(*node_, {.command = cmd, .container_id = cid, .netns = netns, .ifname = ifname,
                           .config = config});
  }

  // Adds a pod and returns its IPv4 address (no prefix).
  std::string AddPod(TestNetns& pod, const std::string& cid, const std::string& config) {
    CniOutcome o = Cni("ADD", cid, pod.path(), config);
    EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
    json r = o.json();
    if (!r.is_object() || !r.contains("ips") || r["ips"].empty()) return "";
    std::string a = r["ips"][0]["address"];
    return a.substr(0, a.find('/'));
  }

  std::string StoreText() {
    std::ifstream in(data_dir_ + "/networks/weftnet/state");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  int Allocations() {
    std::string s = StoreText();
    int n = 0;
    for (size_t p = 0; (p = s.find("\nalloc ", p)) != std::string::npos; ++p) ++n;
    return n;
  }
  // DEL leaves the kernel's unregistration of the veth to a background process: wait
  // for it, bounded.
  bool WaitForNoWeftLinks() {
    for (int i = 0; i < 300; ++i) {
      if (WeftLinksOnNode() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  int WeftLinksOnNode() {
    std::string out;
    node_->Exec("ip -o link show | grep -c ': weft' || true", &out);
    return std::stoi(out);
  }

  std::unique_ptr<TestNetns> node_;
  std::vector<std::unique_ptr<TestNetns>> pods_;
  std::string data_dir_;
};

TEST_F(CniNetnsTest, AddWiresAPodThatReachesGatewayPeerAndNode) {
  TestNetns& a = NewPod("a");
  TestNetns& b = NewPod("b");
  std::string ip_a = AddPod(a, "pod-a", Config());
  std::string ip_b = AddPod(b, "pod-b", Config());
  ASSERT_EQ(ip_a, "10.244.1.2");
  ASSERT_EQ(ip_b, "10.244.1.3");

  std::string out;
  ASSERT_EQ(a.Exec("ip -4 -o addr show dev eth0", &out), 0);
  EXPECT_NE(out.find("inet 10.244.1.2/32"), std::string::npos) << out;
  ASSERT_EQ(a.Exec("ip route show default", &out), 0);
  EXPECT_NE(out.find("via 169.254.1.1 dev eth0"), std::string::npos) << out;
  ASSERT_EQ(a.Exec("ip link show eth0", &out), 0);
  EXPECT_NE(out.find("mtu 1420"), std::string::npos) << out;

  EXPECT_EQ(a.Exec("ping -c1 -W2 169.254.1.1"), 0) << "pod → its gateway";
  EXPECT_EQ(a.Exec("ping -c1 -W2 " + ip_b), 0) << "pod → another pod on the node";
  EXPECT_EQ(b.Exec("ping -c1 -W2 " + ip_a), 0);
  EXPECT_EQ(node_->Exec("ping -c1 -W2 " + ip_a), 0) << "node → pod";
}

TEST_F(CniNetnsTest, DualStackPodGetsBothFamilies) {
  TestNetns& a = NewPod("a");
  TestNetns& b = NewPod("b");
  const std::string conf = Config(R"(["10.244.1.0/24","fd00:10:244:1::/64"])");
  CniOutcome o = Cni("ADD", "pod-a", a.path(), conf);
  ASSERT_EQ(o.exit_code, 0) << o.out;
  json r = o.json();
  ASSERT_EQ(r["ips"].size(), 2u);
  EXPECT_EQ(r["ips"][1]["address"], "fd00:10:244:1::2/128");
  ASSERT_EQ(Cni("ADD", "pod-b", b.path(), conf).exit_code, 0);
  std::string out;
  a.Exec("ip -6 -o addr show dev eth0 scope global", &out);
  EXPECT_NE(out.find("fd00:10:244:1::2/128"), std::string::npos) << out;
  EXPECT_EQ(a.Exec("ping -6 -c1 -W2 fe80::1%eth0"), 0);
  EXPECT_EQ(a.Exec("ping -6 -c1 -W2 fd00:10:244:1::3"), 0);
  EXPECT_EQ(a.Exec("ping -c1 -W2 10.244.1.3"), 0);
}

TEST_F(CniNetnsTest, CheckPassesThenFailsWhenTheAddressIsRemovedByHand) {
  TestNetns& a = NewPod("a");
  CniOutcome add = Cni("ADD", "pod-a", a.path(), Config());
  ASSERT_EQ(add.exit_code, 0);
  const std::string with_prev = Config(R"(["10.244.1.0/24"])", "1.0.0", ",\"prevResult\":" + add.out);
  CniOutcome check = Cni("CHECK", "pod-a", a.path(), with_prev);
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(check.out, "");

  ASSERT_EQ(a.Exec("ip addr del 10.244.1.2/32 dev eth0"), 0);
  check = Cni("CHECK", "pod-a", a.path(), with_prev);
  EXPECT_NE(check.exit_code, 0);
  json e = check.json();
  EXPECT_EQ(e["code"], 102) << check.out;
  EXPECT_NE(std::string(e["details"]).find("10.244.1.2"), std::string::npos) << check.out;
}

TEST_F(CniNetnsTest, DelRemovesEverythingAndIsIdempotent) {
  TestNetns& a = NewPod("a");
  ASSERT_FALSE(AddPod(a, "pod-a", Config()).empty());
  EXPECT_EQ(WeftLinksOnNode(), 1);
  EXPECT_EQ(Allocations(), 1);

  CniOutcome del = Cni("DEL", "pod-a", a.path(), Config());
  EXPECT_EQ(del.exit_code, 0) << del.out;
  // At once: the address is released and the pod is cut off (no route to it).
  EXPECT_EQ(Allocations(), 0);
  std::string routes;
  node_->Exec("ip route show 10.244.1.2", &routes);
  EXPECT_EQ(routes, "");
  // Soon after: the veth pair is gone from both namespaces.
  EXPECT_TRUE(WaitForNoWeftLinks());
  EXPECT_NE(a.Exec("ip link show eth0"), 0) << "pod end must be gone";

  EXPECT_EQ(Cni("DEL", "pod-a", a.path(), Config()).exit_code, 0) << "DEL again";
  EXPECT_EQ(Cni("DEL", "never-added", a.path(), Config()).exit_code, 0) << "DEL of an unknown container";
}

TEST_F(CniNetnsTest, DelWithEmptyNetnsReleasesTheAddress) {
  TestNetns& a = NewPod("a");
  ASSERT_FALSE(AddPod(a, "pod-a", Config()).empty());
  a.Destroy();  // the sandbox is gone; containerd then sends CNI_NETNS=""
  CniOutcome del = Cni("DEL", "pod-a", "", Config());
  EXPECT_EQ(del.exit_code, 0) << del.out;
  EXPECT_EQ(Allocations(), 0);
  EXPECT_TRUE(WaitForNoWeftLinks());
}

TEST_F(CniNetnsTest, ContainerdArgsAreAcceptedAndRecorded) {
  TestNetns& a = NewPod("a");
  CniOutcome o = RunCni(*node_, {.command = "ADD", .container_id = "c0ffee", .netns = a.path(),
                                 .args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-abc;"
                                         "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=1234-5678",
                                 .config = Config()});
  ASSERT_EQ(o.exit_code, 0) << o.out;
  EXPECT_NE(StoreText().find("c0ffee eth0 kube-system coredns-abc"), std::string::npos) << StoreText();
}

// CNI_ARGS values are anyone's text: spaces and newlines in a pod name are stored as
// one field, and every later ADD and DEL on the node still works.
TEST_F(CniNetnsTest, AnyPodNameKeepsTheStoreValid) {
  TestNetns& a = NewPod("a");
  CniOutcome o = RunCni(*node_, {.command = "ADD", .container_id = "c1", .netns = a.path(),
                                 .args = "K8S_POD_NAMESPACE=ns with space;K8S_POD_NAME=evil pod\nalloc 10.244.1.9 x y - -",
                                 .config = Config()});
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_EQ(Allocations(), 1) << StoreText();
  EXPECT_NE(StoreText().find("c1 eth0 ns%20with%20space evil%20pod%0Aalloc%2010.244.1.9"), std::string::npos)
      << StoreText();
  TestNetns& b = NewPod("b");
  EXPECT_FALSE(AddPod(b, "c2", Config()).empty());
  EXPECT_EQ(Cni("DEL", "c1", a.path(), Config()).exit_code, 0);
  EXPECT_EQ(Cni("DEL", "c2", b.path(), Config()).exit_code, 0);
  EXPECT_EQ(Allocations(), 0) << StoreText();
}

TEST_F(CniNetnsTest, GcReleasesAttachmentsNotInTheValidList) {
  TestNetns& a = NewPod("a");
  TestNetns& b = NewPod("b");
  TestNetns& c = NewPod("c");
  AddPod(a, "pod-a", Config("[\"10.244.1.0/24\"]", "1.1.0"));
  std::string ip_b = AddPod(b, "pod-b", Config("[\"10.244.1.0/24\"]", "1.1.0"));
  AddPod(c, "pod-c", Config("[\"10.244.1.0/24\"]", "1.1.0"));
  ASSERT_EQ(Allocations(), 3);
  CniOutcome gc = RunCni(*node_, {.command = "GC", .config = Config("[\"10.244.1.0/24\"]", "1.1.0",
      R"(,"cni.dev/valid-attachments":[{"containerID":"pod-b","ifname":"eth0"}])")});
  EXPECT_EQ(gc.exit_code, 0) << gc.out;
  EXPECT_EQ(Allocations(), 1);
  EXPECT_NE(StoreText().find("pod-b"), std::string::npos);
  EXPECT_EQ(WeftLinksOnNode(), 1);
  EXPECT_NE(a.Exec("ip link show eth0"), 0);
  EXPECT_EQ(b.Exec("ping -c1 -W2 169.254.1.1"), 0) << "the valid pod keeps working";
  EXPECT_EQ(node_->Exec("ping -c1 -W2 " + ip_b), 0);
}

TEST_F(CniNetnsTest, VersionAndStatus) {
  CniOutcome v = RunCni(*node_, {.command = "VERSION", .config = R"({"cniVersion":"1.1.0"})"});
  ASSERT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.json()["supportedVersions"], json::parse(R"(["0.3.1","0.4.0","1.0.0","1.1.0"])"));
  CniOutcome s = RunCni(*node_, {.command = "STATUS", .config = Config("[\"10.244.1.0/24\"]", "1.1.0")});
  EXPECT_EQ(s.exit_code, 0) << s.out;
  // A data dir that cannot be created (a file in the way) makes the plugin unavailable.
  std::ofstream("/tmp/" + node_->name() + "-file") << "x";
  std::string bad = R"({"cniVersion":"1.1.0","name":"weftnet","type":"weft","podCIDRs":["10.244.1.0/24"],"dataDir":"/tmp/)" +
                    node_->name() + "-file/sub\"}";
  s = RunCni(*node_, {.command = "STATUS", .config = bad});
  EXPECT_NE(s.exit_code, 0);
  EXPECT_EQ(s.json()["code"], 50) << s.out;
  std::filesystem::remove("/tmp/" + node_->name() + "-file");
}

struct BadConfig {
  const char* name;
  std::string config;
  int code;
};

TEST_F(CniNetnsTest, BrokenConfigsGetSpecErrorsAndCreateNothing) {
  TestNetns& a = NewPod("a");
  const std::string dd = ",\"dataDir\":\"" + data_dir_ + "\"";
  std::vector<BadConfig> cases = {
      {"malformed_json", R"({"cniVersion":"1.0.0","name":)", 6},
      {"bad_cidr", R"({"cniVersion":"1.0.0","name":"weftnet","type":"weft","podCIDRs":["10.244.1.0/33"])" + dd + "}", 7},
      {"missing_cidrs", R"({"cniVersion":"1.0.0","name":"weftnet","type":"weft")" + dd + "}", 7},
      {"missing_name", R"({"cniVersion":"1.0.0","type":"weft","podCIDRs":["10.244.1.0/24"])" + dd + "}", 7},
      {"unknown_version", R"({"cniVersion":"7.0.0","name":"weftnet","type":"weft","podCIDRs":["10.244.1.0/24"])" + dd + "}", 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    CniOutcome o = Cni("ADD", "pod-a", a.path(), c.config);
    EXPECT_NE(o.exit_code, 0);
    json e = o.json();
    ASSERT_TRUE(e.is_object()) << "stdout must be error JSON: " << o.out;
    EXPECT_EQ(e["code"], c.code) << o.out;
    EXPECT_TRUE(e.contains("msg") && e.contains("cniVersion")) << o.out;
    EXPECT_EQ(WeftLinksOnNode(), 0);
    EXPECT_NE(a.Exec("ip link show eth0"), 0);
    EXPECT_EQ(Allocations(), 0);
  }
  // A netns that does not exist: code 3, nothing allocated.
  CniOutcome o = Cni("ADD", "pod-x", "/var/run/netns/does-not-exist-weft", Config());
  EXPECT_EQ(o.json()["code"], 3) << o.out;
  EXPECT_EQ(Allocations(), 0);
}

TEST_F(CniNetnsTest, PoolExhaustionIsAClearErrorWithNoHalfMadeVeth) {
  const std::string conf = Config(R"(["10.244.9.0/30"])");  // one usable address
  TestNetns& a = NewPod("a");
  TestNetns& b = NewPod("b");
  ASSERT_EQ(AddPod(a, "pod-a", conf), "10.244.9.2");
  CniOutcome o = Cni("ADD", "pod-b", b.path(), conf);
  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(o.json()["code"], 101) << o.out;
  EXPECT_NE(std::string(o.json()["details"]).find("10.244.9.0/30"), std::string::npos) << o.out;
  EXPECT_EQ(WeftLinksOnNode(), 1);
  EXPECT_NE(b.Exec("ip link show eth0"), 0);
  EXPECT_EQ(Allocations(), 1);
}

TEST_F(CniNetnsTest, AnExistingInterfaceNameInThePodIsRefusedAndNothingLeaks) {
  TestNetns& a = NewPod("a");
  ASSERT_EQ(a.Exec("ip link add eth0 type veth peer name other0"), 0);
  CniOutcome o = Cni("ADD", "pod-a", a.path(), Config());
  EXPECT_NE(o.exit_code, 0) << o.out;
  EXPECT_EQ(WeftLinksOnNode(), 0);
  EXPECT_EQ(Allocations(), 0);
}

// SIGKILL at random instants during 200 ADDs, then DEL (and GC): nothing may leak.
TEST_F(CniNetnsTest, KilledMidAddLeaksNothingAfterDelAndGc) {
  constexpr int kPods = 200, kNetns = 20;
  std::vector<TestNetns*> ns;
  for (int i = 0; i < kNetns; ++i) ns.push_back(&NewPod("k" + std::to_string(i)));
  const std::string conf = Config(R"(["10.245.0.0/16","fd00:245::/64"])", "1.1.0");
  // Time one ADD/DEL to spread kills over the whole of an ADD.
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Cni("ADD", "probe", ns[0]->path(), conf, "probe0").exit_code, 0);
  auto add_time = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_EQ(Cni("DEL", "probe", ns[0]->path(), conf, "probe0").exit_code, 0);
  std::mt19937 rng(20261124);
  std::uniform_int_distribution<int64_t> when(0, std::max<int64_t>(add_time.count() * 3 / 2, 2000));
  int killed = 0, completed = 0;
  for (int i = 0; i < kPods; ++i) {
    CniOutcome o = RunCni(*node_, {.command = "ADD", .container_id = "crash" + std::to_string(i),
                                   .netns = ns[i % kNetns]->path(), .ifname = "eth" + std::to_string(i / kNetns),
                                   .config = conf, .kill_after = std::chrono::microseconds(when(rng))});
    (o.killed ? killed : completed)++;
  }
  RecordProperty("killed", killed);
  RecordProperty("completed", completed);
  EXPECT_GT(killed, kPods / 4) << "the kills must land mid-ADD for this test to mean anything";
  // The runtime retries DEL for every sandbox it started.
  for (int i = 0; i < kPods; ++i) {
    CniOutcome o = Cni("DEL", "crash" + std::to_string(i), ns[i % kNetns]->path(), conf,
                       "eth" + std::to_string(i / kNetns));
    ASSERT_EQ(o.exit_code, 0) << o.out;
  }
  EXPECT_EQ(Allocations(), 0) << StoreText();
  EXPECT_TRUE(WaitForNoWeftLinks());
  for (TestNetns* n : ns) {
    std::string out;
    n->Exec("ip -o link show | grep -v ': lo:' || true", &out);
    EXPECT_EQ(out, "") << n->name();
  }
  // GC with nothing valid after a second round of kills cleans up just the same.
  for (int i = 0; i < 40; ++i) {
    RunCni(*node_, {.command = "ADD", .container_id = "gc" + std::to_string(i), .netns = ns[i % kNetns]->path(),
                    .ifname = "gc" + std::to_string(i / kNetns), .config = conf,
                    .kill_after = std::chrono::microseconds(when(rng))});
  }
  CniOutcome gc = RunCni(*node_, {.command = "GC", .config = Config(R"(["10.245.0.0/16","fd00:245::/64"])", "1.1.0",
                                                                   R"(,"cni.dev/valid-attachments":[])")});
  EXPECT_EQ(gc.exit_code, 0) << gc.out;
  EXPECT_EQ(Allocations(), 0) << StoreText();
  EXPECT_EQ(WeftLinksOnNode(), 0);
  EXPECT_EQ(StoreText().substr(0, 11), "weft-ipam 1") << "store must stay parseable";
}

}  // namespace
}  // namespace weft::testing
