// Kubernetes mode: the cluster's Node objects, watched (list + watch, relist on 410).
// What Weft takes from a Node: its pod CIDRs (spec.podCIDRs, from kube-controller-
// manager's --allocate-node-cidrs or the cloud's IPAM), its provider ID and its UID.
#ifndef WEFT_CONTROLLER_KUBE_NODES_H_
#define WEFT_CONTROLLER_KUBE_NODES_H_

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "lib/k8s/kube_client.h"
#include "lib/k8s/reflector.h"

namespace weft::controller {

struct NodeFacts {
  std::string uid;
  std::vector<std::string> pod_cidrs;
  std::string provider_id;  // "aws:///us-east-1a/i-0123…"
  std::string reachable_ip;  // ExternalIP, else InternalIP (k8s::ReachableNodeAddress)
  friend bool operator==(const NodeFacts&, const NodeFacts&) = default;
};

// A Node object's facts (pure; spec.podCIDR is the fallback for old clusters).
NodeFacts NodeFactsOf(const nlohmann::json& node);

// The AWS VPC CNI's SNAT settings from the aws-node DaemonSet (EKS): RANDOMIZESNAT
// ("prng" when unset: its default) and EXTERNALSNAT. Pure.
struct AwsNodeSnat {
  std::string randomize_snat;
  bool external_snat = false;
};
AwsNodeSnat AwsNodeSnatOf(const nlohmann::json& daemonset);

class NodeCache {
 public:
  // `on_change(name, facts)` when a Node appears or changes, `(name, nullptr)` when it
  // is deleted. Called from Run's thread, not under the cache's lock.
  using OnChange = std::function<void(const std::string& name, const NodeFacts* facts)>;
  NodeCache(k8s::KubeClient& client, OnChange on_change);

  void Run(std::stop_token stop);
  bool synced() const { return reflector_.synced(); }
  std::optional<NodeFacts> Find(const std::string& name) const;

 private:
  void Set(const std::string& name, std::optional<NodeFacts> facts);

  OnChange on_change_;
  k8s::Reflector reflector_;
  mutable std::mutex mu_;
  std::map<std::string, NodeFacts> nodes_;  // guarded by mu_
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_KUBE_NODES_H_
