// A Weft cluster in the NAT lab: weft-controller on the internet host, weft-agent on
// every node (each with its own wireguard-go), and one pod per node wired by weft-cni
// with the conflist its agent wrote. Used by the end-to-end tests and the demo.
#ifndef WEFT_TESTS_LAB_LAB_CLUSTER_H_
#define WEFT_TESTS_LAB_LAB_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/lab/child_process.h"
#include "tests/lab/nat_lab.h"

namespace weft::lab {

struct ClusterBinaries {
  std::string controller;
  std::string agent;
  std::string cni;
  // A TURN relay on the internet host (198.51.100.200:3478, shared secret) handed to the
  // agents by the controller: "weft-relay" (this binary) or "coturn"; empty: none.
  std::string relay;
  std::string relay_kind;  // "weft" or "coturn"
  int relay_count = 1;     // relays at 198.51.100.200:3478, :3479, ...
  // The controller's --cluster-cidr: "10.244.0.0/16"; dual-stack with an IPv6 one beside
  // it (each node gets a /64 of it), IPv6-only with that alone.
  std::string cluster_cidr = "10.244.0.0/16";
};

// From ping's summary ("80 packets transmitted, 71 received"): how many of `sent` were
// lost; -1 when there is no summary.
int LostPings(const std::string& ping_output, int sent);

class LabCluster {
 public:
  // With `start_agents` false only the lab and the controller are up; StartAgent and
  // AddPod bring nodes in one at a time (benchmarks).
  static absl::StatusOr<std::unique_ptr<LabCluster>> Create(const LabSpec& spec, const ClusterBinaries& bin,
                                                            bool start_agents = true);
  ~LabCluster();

  NatLab& lab() { return *lab_; }
  // The cluster's files: "token" (the join token), "ca.crt" (the controller's CA), ...
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> nodes() const;
  // The pod's first address (IPv4 in a dual-stack cluster), and all of them.
  std::string PodIp(const std::string& node) const { return pod_ips_.at(node).at(0); }
  const std::vector<std::string>& PodIps(const std::string& node) const { return pod_ips_.at(node); }
  const testing::TestNetns& Pod(const std::string& node) const { return *pods_.at(node); }
  // Pings `ip` from `node`'s pod until one answer or `seconds` pass (bounded).
  bool PodPing(const std::string& node, const std::string& ip, int seconds) const;
  std::string AgentLog(const std::string& node) const;
  // The conflist `node`'s agent wrote ("" before it wrote one).
  std::string Conflist(const std::string& node) const;
  const std::string& WireGuardName(const std::string& node) const { return wg_name_.at(node); }

  // Control-plane faults.
  void StopController();
  pid_t ControllerPid() const { return controller_ ? controller_->pid() : -1; }
  absl::Status StartController();
  // The controller restarted without its state file: a cluster that forgot every node.
  absl::Status RestartControllerFresh();
  // The node's WireGuard device deleted (its wireguard-go exits): the next agent starts anew.
  void DeleteDevice(const std::string& node);
  void KillAgent(const std::string& node);
  // `extra` flags are added to the agent's command line (e.g. --snat-mitigation).
  absl::Status StartAgent(const std::string& node, const std::vector<std::string>& extra = {});
  // How long StartAgent waits for the agent's conflist (its Welcome): 10 s; longer under
  // software emulation (the vm tier).
  void SetAgentStartTimeout(int seconds) { agent_start_timeout_s_ = seconds; }
  void StopAgent(const std::string& node);
  // The relay forwarder as the chart runs it, a sidecar beside the agent (`weft-agent
  // relay-forwarder --persistent` at the node's state directory); the agent then wants
  // --relay-forwarder-sidecar.
  absl::Status StartRelayForwarderSidecar(const std::string& node);
  void KillRelay(int i) { relays_.at(i)->Kill(); }
  // The controller's relay list becomes `relays` (indices; SIGHUP re-reads its file):
  // what a relay pod's endpoint going unready does in Kubernetes.
  void ListRelays(const std::vector<int>& relays);
  // `weft-agent --cleanup` on `node` (uninstall); returns its output.
  std::string CleanupNode(const std::string& node);
  // The controller's GET /status (JSON text; "" when it does not answer).
  std::string ControllerStatus() const;
  // `node`'s entry for `peer` in that status ({} when there is none).
  nlohmann::json PeerStatus(const std::string& node, const std::string& peer) const;
  // Wires a pod on `node` with weft-cni and the conflist its agent wrote.
  absl::Status AddPod(const std::string& node);

 private:
  LabCluster() = default;
  int agent_start_timeout_s_ = 10;
  void WriteRelayList(const std::vector<int>& relays);

  ClusterBinaries bin_;
  std::unique_ptr<NatLab> lab_;
  std::string dir_;
  std::vector<std::string> stun_arg_;
  std::unique_ptr<ChildProcess> controller_;
  std::vector<std::unique_ptr<ChildProcess>> relays_;
  std::map<std::string, std::unique_ptr<ChildProcess>> agents_;
  std::map<std::string, std::unique_ptr<ChildProcess>> sidecars_;
  std::map<std::string, std::string> wg_name_;
  std::map<std::string, std::unique_ptr<testing::TestNetns>> pods_;
  std::map<std::string, std::vector<std::string>> pod_ips_;
};

}  // namespace weft::lab

#endif  // WEFT_TESTS_LAB_LAB_CLUSTER_H_
