#include "tests/lab/lab_cluster.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "lib/testing/slurp.h"

namespace weft::lab {
namespace {

// The controller listens on both families (the host's 198.51.100.200 and 2001:db8::200):
// IPv6-only nodes dial it over IPv6.
constexpr char kControllerListen[] = "[::]:7443";
constexpr char kController[] = "198.51.100.200:7443";
constexpr char kController6[] = "[2001:db8::200]:7443";

using testing::Slurp;

// A CA and the controller's certificate (for its lab address): the lab speaks gRPC over
// TLS, as a cluster does.
absl::Status MakeCertificates(const std::string& dir) {
  std::ofstream(dir + "/san.ext") << "subjectAltName=IP:198.51.100.200,IP:2001:db8::200\n";
  const std::string cmd = absl::StrCat(
      "cd ", dir, " && ",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 "
      "-subj /CN=weft-lab-ca && ",
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout controller.key -out controller.csr "
      "-subj /CN=weft-controller && ",
      "openssl x509 -req -in controller.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out controller.crt -days 2 "
      "-extfile san.ext",
      " >openssl.log 2>&1");
  if (system(cmd.c_str()) != 0) return absl::InternalError("openssl failed: " + Slurp(dir + "/openssl.log"));
  return absl::OkStatus();
}

// The userspace WireGuard of device `name` (the agents leave it running on purpose:
// restarts adopt it).
void StopWireGuardGo(const std::string& name) {
  const std::string cmd = absl::StrCat("pkill -TERM -f '[w]ireguard-go -f ", name, "$' 2>/dev/null");
  (void)!system(cmd.c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<LabCluster>> LabCluster::Create(const LabSpec& spec, const ClusterBinaries& bin,
                                                                bool start_agents) {
  std::unique_ptr<LabCluster> c(new LabCluster());
  c->bin_ = bin;
  ASSIGN_OR_RETURN(c->lab_, NatLab::Create(spec));
  char tmpl[] = "/tmp/weft-cluster-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  c->dir_ = tmpl;
  std::ofstream(c->dir_ + "/token") << "lab-join-token-0123456789abcdef\n";
  RETURN_IF_ERROR(MakeCertificates(c->dir_));
  std::vector<std::string> stun;
  for (const auto& t : c->lab_->StunTargets()) stun.push_back(t.ToString());
  c->stun_arg_ = {"--stun", absl::StrJoin(stun, ",")};
  if (!bin.relay_kind.empty()) {
    std::ofstream(c->dir_ + "/relay-secret") << "lab-relay-secret-0123456789\n";
    for (int i = 0; i < bin.relay_count; ++i) {
      const std::string port = std::to_string(3478 + i), lo = std::to_string(49152 + 1000 * i),
                        hi = std::to_string(49152 + 1000 * i + 999);
      std::vector<std::string> args;
      if (bin.relay_kind == "weft") {
        args = {bin.relay, "--secret-file", c->dir_ + "/relay-secret", "--listen", "198.51.100.200:" + port,
                "--relay-ports", lo + "-" + hi, "--http-listen", "",
                // The lab's relays share one IP with a port range each: the others' ranges
                // are relayed ports too (in Kubernetes every relay has the chart's range).
                "--peer-ports", "49152-65535"};
      } else {
        args = {"/usr/bin/turnserver", "-n", "--listening-ip", "198.51.100.200", "-p", port, "--relay-ip",
                "198.51.100.200", "--min-port", lo, "--max-port", hi, "--use-auth-secret",
                "--static-auth-secret", "lab-relay-secret-0123456789", "--realm", "weft", "--no-tls", "--no-dtls",
                "--no-cli", "--pidfile", c->dir_ + "/relay" + port + ".pid", "--userdb",
                c->dir_ + "/turndb" + port, "--log-file", "stdout", "--simple-log"};
      }
      c->relays_.push_back(
          std::make_unique<ChildProcess>(c->lab_->ns("host").path(), args, c->dir_ + "/relay" + port + ".log"));
    }
    usleep(300000);
  }
  RETURN_IF_ERROR(c->StartController());
  int i = 0;
  for (const auto& site : spec.sites) {
    for (const auto& node : site.nodes) {
      c->wg_name_[node] = absl::StrCat("wc", getpid() % 10000, "n", i++);
      if (start_agents) RETURN_IF_ERROR(c->StartAgent(node));
    }
  }
  if (start_agents) {
    for (const auto& [node, name] : c->wg_name_) RETURN_IF_ERROR(c->AddPod(node));
  }
  return c;
}

LabCluster::~LabCluster() {
  agents_.clear();
  sidecars_.clear();
  controller_.reset();
  relays_.clear();
  // The agents leave wireguard-go and their relay forwarders running on purpose
  // (restarts adopt them): stop them here.
  for (const auto& [node, name] : wg_name_) StopWireGuardGo(name);
  if (!dir_.empty()) {
    const std::string forwarders = absl::StrCat("pkill -f '[r]elay-forwarder --socket ", dir_, "/'");
    for (int i = 0; i < 100 && system(forwarders.c_str()) == 0; ++i) usleep(20000);  // bounded: 2 s
  }
  for (int i = 0; i < 250; ++i) {  // bounded: 5 s
    bool any = false;
    for (const auto& [node, name] : wg_name_) {
      any |= system(absl::StrCat("pgrep -f '[w]ireguard-go -f ", name, "$' >/dev/null").c_str()) == 0;
    }
    if (!any) break;
    usleep(20000);
  }
  pods_.clear();
  lab_.reset();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

std::vector<std::string> LabCluster::nodes() const {
  std::vector<std::string> out;
  for (const auto& [n, w] : wg_name_) out.push_back(n);
  return out;
}

absl::Status LabCluster::RestartControllerFresh() {
  StopController();
  std::filesystem::remove(dir_ + "/controller.state");
  return StartController();
}

void LabCluster::DeleteDevice(const std::string& node) {
  std::string out;
  lab_->ns("n-" + node).Exec(absl::StrCat("ip link del ", wg_name_.at(node), " 2>&1"), &out);
  StopWireGuardGo(wg_name_.at(node));
}

absl::Status LabCluster::StartController() {
  std::vector<std::string> relay_args;
  if (!bin_.relay_kind.empty()) {
    if (!std::filesystem::exists(dir_ + "/relays")) {
      std::vector<int> all;
      for (int i = 0; i < bin_.relay_count; ++i) all.push_back(i);
      WriteRelayList(all);
    }
    relay_args = {"--relay-file", dir_ + "/relays", "--relay-secret-file", dir_ + "/relay-secret"};
  }
  std::vector<std::string> args{bin_.controller, "--listen", kControllerListen, "--tls-cert", dir_ + "/controller.crt",
                               "--tls-key", dir_ + "/controller.key", "--join-token-file",
                               dir_ + "/token", "--cluster-cidr", bin_.cluster_cidr, "--state-file",
                               dir_ + "/controller.state", "--status-listen", "127.0.0.1:7080"};
  args.insert(args.end(), relay_args.begin(), relay_args.end());
  controller_ = std::make_unique<ChildProcess>(lab_->ns("host").path(), args, dir_ + "/controller.log");
  for (int i = 0; i < 300; ++i) {
    std::string out;
    lab_->ns("host").Exec("ss -Hltn sport = :7443", &out);
    if (!out.empty()) return absl::OkStatus();
    usleep(10000);
  }
  return absl::UnavailableError("weft-controller did not start: " + Slurp(dir_ + "/controller.log"));
}

void LabCluster::StopController() { controller_.reset(); }

void LabCluster::WriteRelayList(const std::vector<int>& relays) {
  std::ofstream out(dir_ + "/relays.tmp");
  for (int i : relays) out << "198.51.100.200:" << 3478 + i << "\n";
  out.close();
  std::filesystem::rename(dir_ + "/relays.tmp", dir_ + "/relays");
}

void LabCluster::ListRelays(const std::vector<int>& relays) {
  WriteRelayList(relays);
  if (controller_) controller_->Signal(SIGHUP);
}

void LabCluster::StopAgent(const std::string& node) {
  if (auto it = agents_.find(node); it != agents_.end()) it->second->Stop();
}

std::string LabCluster::CleanupNode(const std::string& node) {
  const std::string d = absl::StrCat(dir_, "/", node);
  std::string out;
  lab_->ns("n-" + node).Exec(absl::StrCat(bin_.agent, " --cleanup --wg-interface ", wg_name_.at(node), " --state-dir ", d,
                                          "/state --cni-conf-dir ", d, "/net.d --cni-data-dir ", d, "/cni 2>&1"),
                             &out);
  return out;
}

std::string LabCluster::ControllerStatus() const {
  std::string out;
  lab_->ns("host").Exec(
      "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:7080/status', timeout=2).read().decode())\"",
      &out);
  return out;
}

nlohmann::json LabCluster::PeerStatus(const std::string& node, const std::string& peer) const {
  nlohmann::json s = nlohmann::json::parse(ControllerStatus(), nullptr, false);
  if (!s.is_object()) return nlohmann::json::object();
  for (const auto& n : s["nodes"]) {
    if (n["name"] != node) continue;
    for (const auto& p : n["peers"]) {
      if (p["peer"] == peer) return p;
    }
  }
  return nlohmann::json::object();
}

absl::Status LabCluster::StartAgent(const std::string& node, const std::vector<std::string>& extra) {
  const std::string d = absl::StrCat(dir_, "/", node);
  std::filesystem::create_directories(d);
  // A node with IPv6 is given the STUN servers of both families (IPv6's verdict: its own
  // global address, or NPTv6's translation); an IPv6-only one dials the controller over
  // IPv6.
  const bool v6_only = !lab_->NodeHasIpv4(node);
  std::vector<std::string> stun = stun_arg_;
  if (lab_->NodeIp6(node)) absl::StrAppend(&stun[1], ",", lab_->StunTarget6().ToString());
  std::vector<std::string> args = {bin_.agent, "--node", node, "--controller", v6_only ? kController6 : kController,
                                   "--ca-file",
                                   dir_ + "/ca.crt",
                                   "--join-token-file", dir_ + "/token", "--wg-interface", wg_name_.at(node),
                                   "--state-dir", d + "/state", "--cni-conf-dir", d + "/net.d",
                                   "--cni-data-dir", d + "/cni", "--nat-interval-ms", "2000",
                                   "--health-interval-ms", "500"};
  args.insert(args.end(), stun.begin(), stun.end());
  args.insert(args.end(), extra.begin(), extra.end());
  agents_[node] = std::make_unique<ChildProcess>(lab_->ns("n-" + node).path(), args, d + "/agent.log");
  for (int i = 0; i < agent_start_timeout_s_ * 100; ++i) {  // bounded: 10 s (by default) for the Welcome and the conflist
    if (std::filesystem::exists(d + "/net.d/10-weft.conflist")) return absl::OkStatus();
    usleep(10000);
  }
  // What the node's connections look like, for the failure's reader.
  std::string sockets;
  lab_->ns("n-" + node).Exec("ss -tnp 2>&1 | head -20", &sockets);
  return absl::UnavailableError(absl::StrCat("agent on ", node, " wrote no conflist in ", agent_start_timeout_s_,
                                             " s: ", Slurp(d + "/agent.log"), "TCP sockets in n-", node, ":\n", sockets));
}

absl::Status LabCluster::StartRelayForwarderSidecar(const std::string& node) {
  const std::string d = absl::StrCat(dir_, "/", node);
  std::filesystem::create_directories(d + "/state");
  const std::string socket = d + "/state/relay-forwarder.sock";
  sidecars_[node] = std::make_unique<ChildProcess>(
      lab_->ns("n-" + node).path(),
      std::vector<std::string>{bin_.agent, "relay-forwarder", "--socket", socket, "--persistent"},
      d + "/relay-forwarder.log");
  for (int i = 0; i < 300; ++i) {  // bounded: 3 s
    if (std::filesystem::exists(socket)) return absl::OkStatus();
    usleep(10000);
  }
  return absl::UnavailableError(absl::StrCat("relay forwarder sidecar on ", node, ": no socket: ",
                                             Slurp(d + "/relay-forwarder.log")));
}

void LabCluster::KillAgent(const std::string& node) {
  if (auto it = agents_.find(node); it != agents_.end()) it->second->Kill();
}

std::string LabCluster::Conflist(const std::string& node) const {
  return Slurp(absl::StrCat(dir_, "/", node, "/net.d/10-weft.conflist"));
}

std::string LabCluster::AgentLog(const std::string& node) const { return Slurp(absl::StrCat(dir_, "/", node, "/agent.log")); }

absl::Status LabCluster::AddPod(const std::string& node) {
  const std::string d = absl::StrCat(dir_, "/", node);
  auto list = nlohmann::json::parse(Slurp(d + "/net.d/10-weft.conflist"), nullptr, false);
  if (!list.is_object()) return absl::InternalError("bad conflist");
  // What a runtime passes the first plugin: its entry, with the list's name and version.
  nlohmann::json conf = list["plugins"][0];
  conf["name"] = list["name"];
  conf["cniVersion"] = list["cniVersion"];
  std::ofstream(d + "/pod.json") << conf.dump();
  pods_[node] = std::make_unique<testing::TestNetns>("p-" + node);
  std::string out;
  const std::string cmd = absl::StrCat("CNI_COMMAND=ADD CNI_CONTAINERID=pod-", node, " CNI_NETNS=", pods_[node]->path(),
                                       " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni ", bin_.cni, " < ", d, "/pod.json");
  if (lab_->ns("n-" + node).Exec(cmd, &out) != 0) return absl::InternalError(absl::StrCat("weft-cni ADD on ", node, ": ", out));
  auto r = nlohmann::json::parse(out, nullptr, false);
  if (!r.is_object() || !r.contains("ips")) return absl::InternalError("weft-cni printed no result: " + out);
  pod_ips_[node].clear();
  for (const auto& ip : r["ips"]) {
    if (!ip.contains("address") || !ip["address"].is_string()) continue;
    const std::string a = ip["address"];
    pod_ips_[node].push_back(a.substr(0, a.find('/')));
  }
  if (pod_ips_[node].empty()) return absl::InternalError("weft-cni gave the pod no address: " + out);
  return absl::OkStatus();
}

int LostPings(const std::string& out, int sent) {
  const size_t p = out.find(" received");
  if (p == std::string::npos) return -1;
  const size_t b = out.rfind(' ', p - 1);
  return sent - std::atoi(out.substr(b + 1, p - b - 1).c_str());
}

bool LabCluster::PodPing(const std::string& node, const std::string& ip, int seconds) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pods_.at(node)->Exec("ping -c1 -W1 " + ip) == 0) return true;
  }
  return false;
}

}  // namespace weft::lab
