#include "lib/k8s/node_address.h"

#include <arpa/inet.h>

namespace weft::k8s {
namespace {

bool IsIpv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

}  // namespace

std::string ReachableNodeAddress(const nlohmann::json& node) try {
  auto status = node.find("status");
  if (status == node.end() || !status->is_object()) return "";
  auto addresses = status->find("addresses");
  if (addresses == status->end() || !addresses->is_array()) return "";
  std::string internal;
  for (const auto& a : *addresses) {
    if (!a.is_object() || !a.contains("address") || !a["address"].is_string()) continue;
    const std::string type = a.value("type", ""), address = a["address"].get<std::string>();
    if (!IsIpv4(address)) continue;
    if (type == "ExternalIP") return address;
    if (type == "InternalIP" && internal.empty()) internal = address;
  }
  return internal;
} catch (const nlohmann::json::exception& e) {
  return "";
}

}  // namespace weft::k8s
