// Kubernetes mode: the relays' TURN shared secret (the "TURN REST API" static-auth
// secret) lives in a Secret that the first controller replica creates (32 random bytes,
// hex) and every replica then reads; relay pods mount it. Nothing random is rendered by
// the chart, and an admin's own Secret of that name is used as it is.
#ifndef WEFT_CONTROLLER_RELAY_SECRET_H_
#define WEFT_CONTROLLER_RELAY_SECRET_H_

#include <string>

#include "absl/status/statusor.h"
#include "lib/k8s/kube_client.h"

namespace weft::controller {

// The Secret's key that holds the shared secret.
inline constexpr char kRelaySecretKey[] = "secret";

// Reads Secret `ns`/`name`, or creates it (a replica that loses the race reads the
// winner's). FailedPrecondition when it exists without a usable secret (16+ bytes).
absl::StatusOr<std::string> EnsureRelaySecret(k8s::KubeClient& client, const std::string& ns, const std::string& name);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_RELAY_SECRET_H_
