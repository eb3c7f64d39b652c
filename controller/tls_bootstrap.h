// Kubernetes mode, TLS out of the box: the controller's gRPC certificate, from a Secret
// that the first replica to start creates (a private CA and a server certificate for the
// controller Service's DNS names) and every replica then reads. The CA certificate is
// published in a ConfigMap the agents mount to verify the controller. No private key
// ever leaves the Secret; nothing random is in the rendered manifests.
#ifndef WEFT_CONTROLLER_TLS_BOOTSTRAP_H_
#define WEFT_CONTROLLER_TLS_BOOTSTRAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/k8s/kube_client.h"

namespace weft::controller {

struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;  // the server certificate
  std::string key_pem;   // its private key
};

// A new CA (ECDSA P-256, 10 years) and a server certificate signed by it for
// `dns_names` (5 years; a name that is an IPv4 or IPv6 address becomes an IP SAN).
// Pure: OpenSSL, no I/O.
absl::StatusOr<TlsMaterial> GenerateTls(const std::vector<std::string>& dns_names);

struct TlsBootstrapOptions {
  std::string ns = "kube-system";
  std::string secret = "weft-controller-tls";  // type kubernetes.io/tls, plus ca.crt
  std::string ca_configmap = "weft-ca";       // data: ca.crt
  std::vector<std::string> dns_names;
};

// Reads the Secret, or creates it (a replica that loses the race reads the winner's),
// and makes the ConfigMap carry its CA.
absl::StatusOr<TlsMaterial> EnsureTls(k8s::KubeClient& client, const TlsBootstrapOptions& opts);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_TLS_BOOTSTRAP_H_
