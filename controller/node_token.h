// Standalone node credentials: a token per node, derived from the join token (which
// stays the cluster's secret, on the controller's host): "wn1.<base64url(HMAC-SHA256(join
// token, "weft-node-token:" + node))>". A node's token admits that node's name only, so a
// node's credentials are worth one node. `weft-controller --print-node-token NODE` issues
// one; `--node-tokens-only` refuses the shared join token from agents.
#ifndef WEFT_CONTROLLER_NODE_TOKEN_H_
#define WEFT_CONTROLLER_NODE_TOKEN_H_

#include <string>

#include "absl/strings/string_view.h"

namespace weft::controller {

std::string NodeToken(absl::string_view join_token, absl::string_view node);
// Whether `presented` equals `expected`, in time that does not depend on where they differ.
bool TokensEqual(absl::string_view presented, absl::string_view expected);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_NODE_TOKEN_H_
