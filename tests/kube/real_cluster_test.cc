// Weft on a real Kubernetes API server, as a new user would install it.
//
// kube-apiserver (built from Debian's source, scripts/kube-apiserver.sh) and etcd on this
// host's loopback; the chart's manifests applied with Debian's kubectl (server-side
// dry-run, then server-side apply); two weft-controller replicas with the chart's
// command lines, each authenticated as the chart's ServiceAccount with the chart's RBAC
// (a TokenRequest token, as the kubelet projects); a TCP balancer in front of them that
// picks a replica per connection, as a ClusterIP Service does; three weft-agents on NAT
// lab nodes with the chart's command lines and tokens for the agent ServiceAccount
// (audience weft-controller). Only what differs between a pod and this host is changed
// (addresses, file paths, the lease duration): each override is listed below.
//
// Then: all agents admitted and every WeftNode READY; the leader killed (-9), and killed
// and restarted at once: every agent on the Lease holder within 3 s, no WeftNode unready
// longer than lease + 3 s; `kubectl delete -f` of the manifests: every node cleaned.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/kube/real_apiserver.h"
#include "tests/lab/child_process.h"
#include "tests/lab/nat_lab.h"
#include "tests/netns/netns_harness.h"
#include "weftctl/document.h"
#include "lib/testing/slurp.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kLeaseMs = 5000;  // the chart's is 15000; shorter keeps the test short
const std::vector<std::string> kNodes = {"k1", "k2", "k3"};

std::string Tail(const std::string& text, size_t n) { return text.size() > n ? text.substr(text.size() - n) : text; }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A container's args with some flags replaced (by name) or added.
std::vector<std::string> Override(const json& container, const std::map<std::string, std::string>& set) {
  std::vector<std::string> out;
  std::set<std::string> done;
  for (const auto& a : container.value("command", json::array())) out.push_back(a);
  for (const auto& a : container.value("args", json::array())) {
    std::string s = a;
    const std::string name = s.substr(0, s.find('='));
    if (auto it = set.find(name); it != set.end()) {
      s = it->first + "=" + it->second;
      done.insert(name);
    }
    out.push_back(s);
  }
  for (const auto& [k, v] : set) {
    if (!done.contains(k)) out.push_back(k + "=" + v);
  }
  return out;
}

std::string Arg(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args) {
    if (absl::StartsWith(a, flag + "=")) return a.substr(flag.size() + 1);
  }
  return "";
}

class RealClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root (network namespaces)";
    if (std::string missing = MissingForRootTest("wireguard-go turnserver openssl nft"); !missing.empty()) {
      GTEST_SKIP() << missing;
    }
    auto bin = RealApiServer::Find(/*build=*/false);
    if (!bin.ok()) {
      if (std::getenv("WEFT_REQUIRE_KUBE_APISERVER")) FAIL() << bin.status();
      GTEST_SKIP() << bin.status() << " (scripts/test.sh builds it)";
    }
    auto spec = lab::ParseLabSpec(R"({"stun_servers": 3, "sites": [
        {"name": "home", "nat": "easy", "nodes": ["k1"]},
        {"name": "shop", "nat": "easy", "nodes": ["k2"]},
        {"name": "dc", "nat": "none", "nodes": ["k3"]}]})");
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto lab = lab::NatLab::Create(*spec);
    ASSERT_TRUE(lab.ok()) << lab.status();
    lab_ = *std::move(lab);
    host_ip_ = lab_->HostIp().ToString();
    auto api = RealApiServer::Start(*bin, {host_ip_});
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = *std::move(api);
    dir_ = api_->dir();
    // The API server as pods see it (the kubernetes Service): at the lab's internet host.
    api_forward_ = std::make_unique<lab::ChildProcess>(
        "", std::vector<std::string>{WEFT_TCP_BALANCER, "--listen", host_ip_ + ":6443", "--listen-netns",
                                     lab_->ns("host").path(), "--backend", absl::StrCat("127.0.0.1:", api_->port())},
        dir_ + "/api-forward.log");
  }
  void TearDown() override {
    agents_.clear();
    for (auto& c : controllers_) c.reset();
    balancer_.reset();
    api_forward_.reset();
    for (const auto& n : kNodes) {  // wireguard-go is left running by design (adopted on restart)
      (void)!system(absl::StrCat("pkill -KILL -f '[w]ireguard-go -f rk", getpid() % 10000, n, "$'").c_str());
    }
    api_.reset();
    lab_.reset();
  }

  // The chart's rendering (the committed manifests are the default one), minus what a
  // 1.20 API server cannot serve, each skip named.
  void ApplyManifests() {
    auto docs = weftctl::ParseDocuments(Slurp(std::string(WEFT_SOURCE_DIR) + "/deploy/manifests/weft.yaml"));
    ASSERT_TRUE(docs.ok()) << docs.status();
    json items = json::array();
    for (auto& d : *docs) {
      const std::string kind = d.value("kind", ""), api = d.value("apiVersion", "");
      if (kind == "PodDisruptionBudget" && api == "policy/v1") {
        std::printf("skipped on 1.20: PodDisruptionBudget %s (policy/v1 is 1.21+)\n",
                    d["metadata"]["name"].get<std::string>().c_str());
        continue;
      }
      if (kind == "Service" && d["spec"].value("type", "") == "LoadBalancer") {
        std::set<std::string> protocols;
        for (const auto& p : d["spec"]["ports"]) protocols.insert(p.value("protocol", "TCP"));
        if (protocols.size() > 1) {
          std::printf("skipped on 1.20: Service %s (a LoadBalancer with UDP and TCP is 1.24+)\n",
                      d["metadata"]["name"].get<std::string>().c_str());
          continue;
        }
      }
      if (kind == "Deployment") deployments_[d["metadata"]["name"]] = d;
      if (kind == "DaemonSet") daemonset_ = d;
      items.push_back(d);
    }
    manifests_ = dir_ + "/weft.json";
    std::ofstream(manifests_) << json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(2);
    std::string out;
    ASSERT_EQ(api_->Kubectl({"apply", "--server-side", "--dry-run=server", "-f", manifests_}, &out), 0) << out;
    ASSERT_EQ(api_->Kubectl({"apply", "--server-side", "-f", manifests_}, &out), 0) << out;
    ASSERT_EQ(api_->Kubectl({"wait", "--for=condition=established", "--timeout=30s",
                             "crd/weftnodes.weft.dev"}, &out), 0) << out;
    for (size_t i = 0; i < kNodes.size(); ++i) {
      json node = {{"apiVersion", "v1"},
                   {"kind", "Node"},
                   {"metadata", {{"name", kNodes[i]}}},
                   {"spec", {{"podCIDRs", {absl::StrCat("10.244.", i + 1, ".0/24")}},
                             {"podCIDR", absl::StrCat("10.244.", i + 1, ".0/24")}}}};
      auto r = api_->admin().Create("/api/v1/nodes", node);
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  // Replica i with the chart's command line; overrides: where it listens (two replicas on
  // one host), how it reaches the API server (no in-cluster files here), its pod name,
  // the lease, and the balancer's address in its certificate.
  void StartController(int i) {
    const json& c = deployments_.at("weft-controller")["spec"]["template"]["spec"]["containers"][0];
    auto token = api_->TokenFile(absl::StrCat("controller", i), "kube-system", "weft-controller", {});
    ASSERT_TRUE(token.ok()) << token.status();
    const std::string dns = Arg(Override(c, {}), "--tls-dns-names");
    auto args = Override(c, {{"--listen", absl::StrCat("127.0.0.1:", ports_[i])},
                             {"--status-listen", absl::StrCat("127.0.0.1:", status_ports_[i])},
                             {"--kube-api", api_->url()},
                             {"--kube-token-file", *token},
                             {"--kube-ca-file", api_->ca_file()},
                             {"--identity", absl::StrCat("weft-controller-", i)},
                             {"--lease-duration-ms", std::to_string(kLeaseMs)},
                             {"--tls-dns-names", dns + "," + host_ip_}});
    args[0] = WEFT_CONTROLLER_BINARY;
    controller_args_[i] = args;
    controllers_[i] = std::make_unique<lab::ChildProcess>("", args, absl::StrCat(dir_, "/controller", i, ".log"));
  }

  void StartAgent(const std::string& node) {
    const json& c = daemonset_["spec"]["template"]["spec"]["containers"][0];
    const std::string d = absl::StrCat(dir_, "/", node);
    std::filesystem::create_directories(d + "/bin");
    std::ofstream(d + "/bin/weft") << "#!/bin/sh\n";  // what install-cni put there
    // The agent's Pod, as the DaemonSet controller would make it on this node (no
    // controller-manager here), and its token bound to that Pod, as the kubelet projects.
    auto ds = api_->admin().Get("/apis/apps/v1/namespaces/kube-system/daemonsets/weft-agent");
    ASSERT_TRUE(ds.ok()) << ds.status();
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", "weft-agent-" + node},
                  {"namespace", "kube-system"},
                  {"ownerReferences",
                   {{{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"}, {"name", "weft-agent"},
                     {"uid", (*ds)["metadata"]["uid"]}, {"controller", true}}}}}},
                {"spec",
                 {{"nodeName", node},
                  {"serviceAccountName", "weft-agent"},
                  {"automountServiceAccountToken", false},
                  {"containers", {{{"name", "agent"}, {"image", "weft"}}}}}}};
    if (!api_->admin().Get("/api/v1/namespaces/kube-system/pods/weft-agent-" + node).ok()) {
      auto created = api_->admin().Create("/api/v1/namespaces/kube-system/pods", pod);
      ASSERT_TRUE(created.ok()) << created.status();
    }
    auto bound = api_->Token("kube-system", "weft-agent", {"weft-controller"}, "weft-agent-" + node);
    ASSERT_TRUE(bound.ok()) << bound.status();
    const std::string controller_token_file = d + "/agent.token";
    std::ofstream(controller_token_file) << *bound << "\n";
    auto controller_token = std::optional<std::string>(controller_token_file);
    auto api_token = api_->TokenFile(node + "-agent-api", "kube-system", "weft-agent", {});
    ASSERT_TRUE(api_token.ok());
    std::vector<std::string> stun;
    for (const auto& t : lab_->StunTargets()) stun.push_back(t.ToString());
    auto args = Override(c, {{"--node", node},  // $(NODE_NAME)
                             {"--controller", host_ip_ + ":7443"},
                             {"--token-file", *controller_token},
                             {"--ca-file", dir_ + "/weft-ca.crt"},
                             {"--stun", absl::StrJoin(stun, ",")},
                             {"--wg-interface", absl::StrCat("rk", getpid() % 10000, node)},
                             {"--state-dir", d + "/state"},
                             {"--cni-conf-dir", d + "/net.d"},
                             {"--cni-data-dir", d + "/cni"},
                             {"--cni-bin-file", d + "/bin/weft"},
                             {"--kube-api", absl::StrCat("https://", host_ip_, ":6443")},
                             {"--kube-token-file", *api_token},
                             {"--kube-ca-file", api_->ca_file()},
                             {"--health-interval-ms", "500"},
                             {"--nat-interval-ms", "2000"}});
    args[0] = WEFT_AGENT_BINARY;
    agents_[node] = std::make_unique<lab::ChildProcess>(lab_->ns("n-" + node).path(), args, d + "/agent.log");
  }

  std::string LeaseHolder() {
    auto l = api_->admin().Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller");
    return l.ok() ? (*l)["spec"].value("holderIdentity", "") : "";
  }
  int LeaderIndex() {
    const std::string h = LeaseHolder();
    for (int i = 0; i < 2; ++i) {
      if (h == absl::StrCat("weft-controller-", i)) return i;
    }
    return -1;
  }
  // Nodes whose agent holds a stream on replica i (its /status).
  int ConnectedTo(int i) {
    httplib::Client c("127.0.0.1", status_ports_[i]);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(2, 0);
    auto r = c.Get("/status");
    if (!r || r->status != 200) return 0;
    auto j = json::parse(r->body, nullptr, false);
    int n = 0;
    if (j.is_object()) {
      for (const auto& node : j.value("nodes", json::array())) n += node.value("connected", false);
    }
    return n;
  }
  std::map<std::string, bool> WeftNodesReady() {
    std::map<std::string, bool> out;
    auto list = api_->admin().Get("/apis/weft.dev/v1alpha1/weftnodes");
    if (!list.ok()) return out;
    for (const auto& w : (*list)["items"]) {
      out[w["metadata"]["name"]] = w.contains("status") && w["status"].value("ready", false);
    }
    return out;
  }
  // Polls every 100 ms until all agents are connected to the Lease holder; meanwhile the
  // longest time any WeftNode was not READY is tracked. Returns the seconds it took, or
  // -1 after `limit` seconds.
  double WaitAllOnLeader(double limit) {
    const auto t0 = Clock::now();
    led_at_.reset();
    while (Seconds(Clock::now() - t0) < limit) {
      TrackUnready();
      const int leader = LeaderIndex();
      if (!led_at_ && leader >= 0 && controllers_[leader] && controllers_[leader]->running()) {
        auto r = [&] {  // serving: its /readyz says leader
          httplib::Client c("127.0.0.1", status_ports_[leader]);
          c.set_connection_timeout(1, 0);
          return c.Get("/readyz");
        }();
        if (r && r->status == 200) led_at_ = Clock::now();
      }
      if (leader >= 0 && controllers_[leader] && ConnectedTo(leader) == static_cast<int>(kNodes.size())) {
        return Seconds(Clock::now() - t0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }
  void TrackUnready() {
    const auto now = Clock::now();
    for (const auto& [node, ready] : WeftNodesReady()) {
      if (ready) {
        unready_since_.erase(node);
      } else {
        auto [it, fresh] = unready_since_.emplace(node, now);
        max_unready_ = std::max(max_unready_, Seconds(now - it->second));
      }
    }
  }
  // Watches the WeftNodes for `seconds` more (unready spells that are still open).
  void Settle(double seconds) {
    for (const auto t0 = Clock::now(); Seconds(Clock::now() - t0) < seconds;) {
      TrackUnready();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  std::string Logs() {
    std::string s;
    for (int i = 0; i < 2; ++i) {
      absl::StrAppend(&s, "--- controller", i, "\n", Tail(Slurp(absl::StrCat(dir_, "/controller", i, ".log")), 3000));
    }
    for (const auto& n : kNodes) {
      absl::StrAppend(&s, "--- agent ", n, "\n", Tail(Slurp(absl::StrCat(dir_, "/", n, "/agent.log")), 3000));
    }
    return s;
  }

  std::unique_ptr<lab::NatLab> lab_;
  std::unique_ptr<RealApiServer> api_;
  std::string dir_, host_ip_, manifests_;
  std::unique_ptr<lab::ChildProcess> api_forward_, balancer_;
  std::map<std::string, json> deployments_;
  json daemonset_;
  int ports_[2] = {17443, 17444}, status_ports_[2] = {17080, 17081};
  std::unique_ptr<lab::ChildProcess> controllers_[2];
  std::vector<std::string> controller_args_[2];
  std::map<std::string, std::unique_ptr<lab::ChildProcess>> agents_;
  std::map<std::string, Clock::time_point> unready_since_;
  std::optional<Clock::time_point> led_at_;  // when a live replica first served as leader
  double max_unready_ = 0;
};

TEST_F(RealClusterTest, ChartOnARealApiServerThroughAServiceWithLeaderFailuresAndUninstall) {
  ApplyManifests();
  if (HasFatalFailure()) return;
  StartController(0);
  StartController(1);
  if (HasFatalFailure()) return;
  balancer_ = std::make_unique<lab::ChildProcess>(
      "", std::vector<std::string>{WEFT_TCP_BALANCER, "--listen", host_ip_ + ":7443", "--listen-netns",
                                   lab_->ns("host").path(), "--backend", absl::StrCat("127.0.0.1:", ports_[0]),
                                   "--backend", absl::StrCat("127.0.0.1:", ports_[1])},
      dir_ + "/balancer.log");
  // The CA the controllers bootstrapped, as the agents' ConfigMap volume would show it.
  std::string ca;
  for (int i = 0; i < 300 && ca.empty(); ++i) {
    auto cm = api_->admin().Get("/api/v1/namespaces/kube-system/configmaps/weft-ca");
    if (cm.ok()) ca = (*cm)["data"].value("ca.crt", "");
    if (ca.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(ca.empty()) << "no CA ConfigMap\n" << Logs();
  std::ofstream(dir_ + "/weft-ca.crt") << ca;
  for (const auto& n : kNodes) StartAgent(n);
  if (HasFatalFailure()) return;

  // All admitted through the balancer, every WeftNode READY.
  const double joined = WaitAllOnLeader(30);
  ASSERT_GE(joined, 0) << "agents not all on the leader\n" << Logs();
  bool all_ready = false;
  for (int i = 0; i < 150 && !all_ready; ++i) {
    auto r = WeftNodesReady();
    all_ready = r.size() == kNodes.size();
    for (const auto& [n, ready] : r) all_ready &= ready;
    if (!all_ready) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(all_ready) << Logs();
  std::printf("3 agents admitted through the balancer in %.1f s; 3 WeftNodes READY\n", joined);
  std::string out;
  api_->Kubectl({"get", "weftnodes"}, &out);
  std::printf("%s", out.c_str());

  // kill -9 of the leader: the standby takes over; every agent follows.
  int leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  max_unready_ = 0;
  auto t0 = Clock::now();
  controllers_[leader]->Kill();
  controllers_[leader].reset();
  double took = WaitAllOnLeader(kLeaseMs / 1000.0 + 10);
  ASSERT_GE(took, 0) << "agents did not reach the new leader\n" << Logs();
  ASSERT_TRUE(led_at_.has_value());
  const double takeover = Seconds(*led_at_ - t0), follow = took - takeover;
  EXPECT_LE(takeover, kLeaseMs / 1000.0 + 2) << "takeover within lease + 2 s";
  EXPECT_LE(follow, 3) << "every agent on the new leader within 3 s of its takeover\n" << Logs();
  Settle(3);
  EXPECT_LE(max_unready_, kLeaseMs / 1000.0 + 3) << Logs();
  std::printf("leader kill -9: new leader serving %.1f s after the kill (lease %.0f s), every agent on it %.1f s "
              "later; longest WeftNode unready %.1f s\n", takeover, kLeaseMs / 1000.0, follow, max_unready_);

  // Start the old replica again (as its Deployment would), then kill -9 the new leader
  // and restart it at once (a container restart: the same identity holds the Lease).
  StartController(leader);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  max_unready_ = 0;
  t0 = Clock::now();
  controllers_[leader]->Kill();
  controllers_[leader].reset();
  StartController(leader);
  took = WaitAllOnLeader(kLeaseMs / 1000.0 + 10);
  ASSERT_GE(took, 0) << "agents stranded after a restarted leader\n" << Logs();
  ASSERT_TRUE(led_at_.has_value());
  const double restart = Seconds(*led_at_ - t0), restart_follow = took - restart;
  EXPECT_LE(restart_follow, 3) << "every agent on the leader within 3 s of it serving\n" << Logs();
  Settle(3);
  EXPECT_LE(max_unready_, kLeaseMs / 1000.0 + 3) << Logs();
  std::printf("leader kill -9 + restart: %s serving %.1f s after the kill, every agent on it %.1f s later; "
              "longest WeftNode unready %.1f s\n", LeaseHolder().c_str(), restart, restart_follow, max_unready_);

  // A rolling update stops an agent (SIGTERM) while Weft stays installed: its check of the
  // DaemonSet, with the chart's RBAC, must say "installed" (a 403 would now read as an
  // uninstall and clean the node), so the node keeps its data plane.
  {
    const std::string n = kNodes[0], d = absl::StrCat(dir_, "/", n);
    agents_[n]->Stop();
    std::string links;
    lab_->ns("n-" + n).Exec("ip -o link show", &links);
    EXPECT_NE(links.find(absl::StrCat("rk", getpid() % 10000, n)), std::string::npos)
        << "a restart must not clean the node\n" << Slurp(d + "/agent.log");
    EXPECT_TRUE(std::filesystem::exists(d + "/net.d/10-weft.conflist"));
    EXPECT_NE(Slurp(d + "/agent.log").find("the WireGuard device stays up"), std::string::npos);
    StartAgent(n);
    EXPECT_GE(WaitAllOnLeader(10), 0) << Logs();
  }

  // Uninstall as `kubectl delete -f` does it (file order: ServiceAccounts and RBAC go
  // before the DaemonSet), then the kubelet stops the agents (SIGTERM).
  ASSERT_EQ(api_->Kubectl({"delete", "-f", manifests_, "--wait=false"}, &out), 0) << out;
  for (auto& [n, a] : agents_) a->Stop();
  for (const auto& n : kNodes) {
    const std::string d = absl::StrCat(dir_, "/", n);
    std::string links, tables;
    lab_->ns("n-" + n).Exec("ip -o link show", &links);
    lab_->ns("n-" + n).Exec("nft list tables", &tables);
    EXPECT_EQ(links.find(absl::StrCat("rk", getpid() % 10000, n)), std::string::npos) << n << ": WireGuard device left\n" << Slurp(d + "/agent.log");
    EXPECT_EQ(tables.find("table inet weft"), std::string::npos) << n << ": nftables table left";
    EXPECT_EQ(tables.find("table ip weft"), std::string::npos) << n << ": nftables table left";
    EXPECT_FALSE(std::filesystem::exists(d + "/net.d/10-weft.conflist")) << n << ": conflist left";
    EXPECT_FALSE(std::filesystem::exists(d + "/bin/weft")) << n << ": weft-cni left";
    EXPECT_FALSE(std::filesystem::exists(d + "/state/wireguard.key")) << n << ": key left";
  }
}

}  // namespace
}  // namespace weft::testing
