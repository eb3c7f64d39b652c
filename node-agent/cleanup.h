// Uninstall: everything weft-agent made on the node goes (the conflist, the WireGuard
// device and with it its routes and addresses, the nftables tables `ip weft` and
// `ip weft-snat`, the IPAM store, the key and state, the CNI plugin binary). Run by
// `weft-agent --cleanup`, and in Kubernetes by the agent itself on SIGTERM when its
// DaemonSet is gone (helm uninstall, kubectl delete): a rolling update or a node drain
// leaves the node as it is.
#ifndef WEFT_NODE_AGENT_CLEANUP_H_
#define WEFT_NODE_AGENT_CLEANUP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/k8s/kube_client.h"

namespace weft::agent {

struct CleanupOptions {
  std::string wg_interface = "weft0";
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::string cni_data_dir = "/run/weft/cni";
  std::string state_dir = "/var/lib/weft";
  std::string cni_bin_file;  // e.g. /opt/cni/bin/weft ("" keeps it)
};

// Removes what exists, step by step (one failing step does not stop the others).
// Returns what was removed, one line each, or the first error.
absl::StatusOr<std::vector<std::string>> CleanupNode(const CleanupOptions& opts);

// Whether the DaemonSet `name` in `ns` is gone or being deleted, or the agent's own
// ServiceAccount or RBAC is (401, 403): the cluster is uninstalling Weft. An unreachable
// API server is an error: then nothing is removed.
absl::StatusOr<bool> DaemonSetGone(k8s::KubeClient& client, const std::string& ns, const std::string& name);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_CLEANUP_H_
