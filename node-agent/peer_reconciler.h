// The one owner of the node's per-peer state: what the WireGuard device holds (applied),
// and each decided pair's path state machine (nat::PeerPath), which has the last word on
// the pair's path, endpoint and reason. Pure: Plan says what the device needs and which
// punches to send; the caller writes the device and sends them (outside its lock), then
// Commits. Not thread-safe: the agent guards it with its state lock.
#ifndef WEFT_NODE_AGENT_PEER_RECONCILER_H_
#define WEFT_NODE_AGENT_PEER_RECONCILER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/nat/peer_path.h"
#include "lib/wireguard/device.h"
#include "node-agent/peer_plan.h"
#include "weft/v1/weft.pb.h"

namespace weft::agent {

class PeerReconciler {
 public:
  // `adopted`: the peers of a device this agent adopted (a restarted agent), kept as they
  // are until the pairs are decided.
  explicit PeerReconciler(std::string self, std::vector<PlannedPeer> adopted = {})
      : self_(std::move(self)), applied_(std::move(adopted)) {}

  struct Inputs {
    const std::map<std::string, v1::NodeInfo>* nodes = nullptr;  // accepted (peer_guard.h)
    const std::map<std::string, v1::PairDirective>* directives = nullptr;
    const v1::NodeInfo* self_info = nullptr;  // this node's name and NAT verdict, once known
    // Each peer's local relay proxy (a peer with a relayed address, whatever its path).
    std::map<std::string, net::Endpoint> proxies;
    std::map<std::string, int> path_mtus;  // found by probing (absent: not known)
  };
  struct Step {
    std::vector<PlannedPeer> desired;
    wireguard::DeviceConfig diff;       // what the device needs (no peers: nothing)
    std::vector<net::Endpoint> punch;   // to send from the WireGuard port before peers send
    std::vector<std::string> changes;   // "peer P: path (reason)" for each that changed
  };
  // The peers wanted now; advances the path machines (their decisions, relays, time).
  Step Plan(const Inputs& in, int64_t now);
  // The device holds `step.diff`: `step.desired` is what is applied.
  void Commit(Step step) { applied_ = std::move(step.desired); }
  // Plan, write the device, Commit; the punches are left to the caller (in `punch`).
  absl::Status Reconcile(const Inputs& in, int64_t now, wireguard::Device& device, std::vector<net::Endpoint>* punch);

  const std::vector<PlannedPeer>& applied() const { return applied_; }
  // The decided pairs' path machines, by peer (WireGuard's samples and probe answers go in).
  std::map<std::string, nat::PeerPath>& paths() { return paths_; }

 private:
  std::string self_;
  std::vector<PlannedPeer> applied_;
  std::map<std::string, nat::PeerPath> paths_;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_PEER_RECONCILER_H_
