// `weftctl explain NODE [PEER]`: why a node's NAT is what it is (the SNATRandomized
// diagnosis with its evidence and fix) and why a pair takes the path it takes, from the
// controller's status: its /status JSON (standalone) or WeftNode objects (`kubectl get
// weftnodes -o json`, or one `kubectl get weftnode NODE -o json`). Pure: JSON in, text out.
#ifndef WEFT_WEFTCTL_EXPLAIN_H_
#define WEFT_WEFTCTL_EXPLAIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace weft::weftctl {

absl::StatusOr<std::string> Explain(const nlohmann::json& status, const std::string& node, const std::string& peer);

}  // namespace weft::weftctl

#endif  // WEFT_WEFTCTL_EXPLAIN_H_
