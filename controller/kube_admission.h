// Kubernetes mode: who may join. An agent presents its projected ServiceAccount token
// (audience: the controller); the API server's TokenReview says whose it is. Admitted:
// the agent's ServiceAccount, with the controller's audience, in a token bound to a Pod
// (the kubelet projects such tokens; TokenReview names the Pod and its UID in
// status.user.extra on every supported version) that exists with that UID, belongs to
// the agent DaemonSet and runs on the node the agent claims; where the API server also
// names the node (1.30+), that too must match. The Node must exist with pod CIDRs.
//
// So a token holder speaks only for the node its Pod runs on: a stolen token is worth
// one node, not the cluster; a token of a deleted Pod (the UID differs) is worth nothing.
#ifndef WEFT_CONTROLLER_KUBE_ADMISSION_H_
#define WEFT_CONTROLLER_KUBE_ADMISSION_H_

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/kube_nodes.h"
#include "lib/k8s/kube_client.h"
#include "weft/v1/weft.pb.h"

namespace weft::controller {

struct AdmissionOptions {
  std::string audience = "weft-controller";
  std::string service_account = "system:serviceaccount:kube-system:weft-agent";
  std::string daemonset = "weft-agent";  // in the ServiceAccount's namespace
  std::chrono::seconds cache_ttl{60};
};

class TokenReviewAdmission {
 public:
  TokenReviewAdmission(k8s::KubeClient& client, const NodeCache& nodes, AdmissionOptions opts)
      : client_(client), nodes_(nodes), opts_(std::move(opts)) {}

  // The node's pod CIDRs, or why not: Unauthenticated (no or a refused token),
  // PermissionDenied (another identity, another node), NotFound (no such Node),
  // FailedPrecondition (a Node without pod CIDRs), Unavailable (API server).
  absl::StatusOr<std::vector<std::string>> Admit(const v1::Hello& hello);
  int reviews() const;

 private:
  struct Reviewed {
    std::string username;
    std::string node;      // from the token's binding, "" when the API server does not say
    std::string pod;       // the Pod the token is bound to ("" for an unbound token)
    std::string pod_uid;
    std::string pod_node;  // where that Pod runs (its spec.nodeName)
    std::chrono::steady_clock::time_point at;
  };
  // The bound Pod's node, once its UID and owner are checked.
  absl::StatusOr<std::string> PodNode(const std::string& ns, const std::string& pod, const std::string& uid);
  absl::StatusOr<Reviewed> Review(const std::string& token);

  k8s::KubeClient& client_;
  const NodeCache& nodes_;
  const AdmissionOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, Reviewed> cache_;  // token → review; guarded by mu_
  int reviews_ = 0;
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_KUBE_ADMISSION_H_
