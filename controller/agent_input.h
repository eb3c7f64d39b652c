// What an agent may tell the controller. Every field of a Hello, NodeInfo or
// HealthReport comes from a node that may be compromised: it is checked here before
// anything of it is kept, shown or passed on to other agents (pure, no I/O).
//
// Not checked here, because they need the cluster: pod CIDRs (the controller assigns
// them and overwrites what an agent says) and whether a key is another node's.
#ifndef WEFT_CONTROLLER_AGENT_INPUT_H_
#define WEFT_CONTROLLER_AGENT_INPUT_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "weft/v1/weft.pb.h"

namespace weft::controller {

// Bounds on one agent's messages: far above what an honest agent sends (a node has a few
// addresses, one reflexive and one relayed candidate), far below what would cost the
// controller or every other agent memory.
inline constexpr size_t kMaxCandidates = 16;
inline constexpr size_t kMaxPodCidrs = 4;
inline constexpr size_t kMaxText = 512;        // a reason, a rule, an address
inline constexpr size_t kMaxSnatRules = 16;
inline constexpr size_t kMaxToken = 16 * 1024;  // a ServiceAccount token is 1-2 KiB
// The largest message an agent may send (gRPC refuses larger ones): a health report for
// 5,000 peers with their reasons fits.
inline constexpr int kMaxAgentMessageBytes = 1 << 20;
// Messages per second one agent may send (after a burst): an honest agent sends a
// health report at most every 500 ms and its node when something changed.
inline constexpr double kAgentMessagesPerSecond = 10;
inline constexpr double kAgentMessageBurst = 40;

// A Kubernetes node name: an RFC 1123 subdomain (lower-case letters, digits, '-' and
// '.', labels of 1-63 characters, 253 in all). It becomes a WeftNode name, a
// Prometheus label and a TURN username, so nothing else is accepted.
absl::Status CheckNodeName(absl::string_view name);
// A candidate or reflexive address: a unicast address a peer could send to (not
// unspecified, loopback, link-local, multicast or broadcast), port 1-65535.
absl::Status CheckEndpoint(const v1::Endpoint& e);
absl::Status CheckHello(const v1::Hello& h);
// Every field of a node's report but its pod CIDRs, each with the field's name in the
// error.
absl::Status CheckNodeInfo(const v1::NodeInfo& n);

// A health report reduced to what the node may speak of: one entry per peer for which
// `is_peer` holds, each with an address as endpoint (WireGuard's, as the node sees it: a
// relayed peer's is the node's loopback proxy) or none, and bounded text. Entries
// dropped are added to `*dropped`.
v1::HealthReport CleanHealth(const v1::HealthReport& report, const std::function<bool(const std::string&)>& is_peer,
                             size_t* dropped);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_AGENT_INPUT_H_
