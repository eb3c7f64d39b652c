// libFuzzer target: what the Kubernetes API server (or whoever sits on the path to it)
// returns, as the controller reads it: watch lines, Node, DaemonSet, Lease, EndpointSlice
// objects, API Status bodies and the WeftNode status a previous leader wrote. Any bytes:
// no crash, no exception escaping (a wrong type is not a reason to take the controller
// down).
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/kube_nodes.h"
#include "lib/k8s/relay_watch.h"
#include "controller/weftnode.h"
#include "lib/k8s/api_status.h"
#include "lib/k8s/lease.h"
#include "lib/k8s/node_address.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)weft::k8s::StatusFromResponse(400, text);
  (void)weft::k8s::ParseWatchEvent(text);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  (void)weft::controller::NodeFactsOf(j);
  (void)weft::controller::AwsNodeSnatOf(j);
  (void)weft::controller::NodeInfoFromStatus(j);
  (void)weft::k8s::RelaysFromSlices({j}, "turn", [](const std::string&) { return std::string("192.0.2.1"); });
  (void)weft::k8s::LeaseSpecOf(j);
  (void)weft::k8s::ReachableNodeAddress(j);
  (void)weft::k8s::ResourceVersionOf(j);
  (void)weft::k8s::NameOf(j);
  return 0;
}
