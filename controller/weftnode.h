// WeftNode (weft.dev/v1alpha1, cluster-scoped): what `kubectl get weftnodes` shows of a
// node. The controller writes its status; this file is the pure mapping between the
// controller's view of a node and that status, and back (a new leader rebuilds its
// endpoint state from the status its predecessor wrote).
#ifndef WEFT_CONTROLLER_WEFTNODE_H_
#define WEFT_CONTROLLER_WEFTNODE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/nat/path_strategy.h"
#include "lib/nat/snat_diagnosis.h"
#include "nlohmann/json.hpp"
#include "weft/v1/weft.pb.h"

namespace weft::controller {

inline constexpr char kWeftNodeApiVersion[] = "weft.dev/v1alpha1";
inline constexpr char kWeftNodes[] = "/apis/weft.dev/v1alpha1/weftnodes";

// One peer of the node as the status lists it: the controller's decision and, when the
// agent reported it, what the data plane does.
struct PeerView {
  std::string name;
  nat::PathDecision decision;
  std::optional<v1::PeerHealth> health;
};

struct NodeView {
  v1::NodeInfo info;
  bool connected = false;  // its agent has a live stream to the leader
  std::string provider_id;
  std::vector<PeerView> peers;
  nat::SnatDiagnosis snat;  // the SNATRandomized condition
};

// The node's SNAT evidence and diagnosis as JSON (WeftNode status.snat, /status).
nlohmann::json SnatJson(const nat::SnatDiagnosis& d, const v1::NodeInfo& info);

// "public", "easy", "hard", "udp-blocked", "no-ipv4" or "unknown": the NAT column.
std::string NatTypeOf(const v1::NatReport& nat);
// IPv6's verdict (WeftNode status.natIPv6, /status nat6): type "public" (the node's own
// global address), "translated" (NPTv6 / NAT66: `reflexive` is where peers reach it),
// "udp-blocked", "no-ipv6" or "unknown", and the reason.
nlohmann::json Nat6Json(const v1::NatReport& nat6);

// The WeftNode's status. Deterministic (same view → same JSON) so an unchanged node is
// not written again. `report` carries the agent's report as protobuf JSON: lossless.
nlohmann::json WeftNodeStatus(const NodeView& view);
// One peer as the status lists it, named under `name_key` ("name" in WeftNode, "peer" in
// /status): "path" is what WireGuard uses now ("direct", "relay", "relay-tcp", "none";
// "unknown" before the agent reported), "decision" and "reason" the controller's, and
// "why" the agent's reason when the two differ.
nlohmann::json PeerJson(const PeerView& p, const char* name_key);

// The agent's report kept in a status (status.report), for a new leader.
absl::StatusOr<v1::NodeInfo> NodeInfoFromStatus(const nlohmann::json& status);

// Sets each condition's lastTransitionTime in `status`: kept from `previous` (the
// conditions last written) while the condition's status is the same, `now` (RFC 3339)
// when it changed or is new. Pure.
void SetTransitionTimes(const nlohmann::json& previous, const std::string& now, nlohmann::json& status);

// A new WeftNode object (no status: that is written through /status).
nlohmann::json NewWeftNode(const std::string& name);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_WEFTNODE_H_
