// Which address of a Node the world reaches it at: its ExternalIP (clouds set it for
// nodes with a public address), else its InternalIP. IPv4 only. Pure.
#ifndef WEFT_LIB_K8S_NODE_ADDRESS_H_
#define WEFT_LIB_K8S_NODE_ADDRESS_H_

#include <string>

#include "nlohmann/json.hpp"

namespace weft::k8s {

// "" when the Node lists neither (status.addresses).
std::string ReachableNodeAddress(const nlohmann::json& node);

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_NODE_ADDRESS_H_
