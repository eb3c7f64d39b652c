// A real Kubernetes API server for tests: kube-apiserver built from Debian's `kubernetes`
// source package (scripts/kube-apiserver.sh caches it) on Debian's etcd, with RBAC, token
// authentication (a static admin token) and ServiceAccount token signing (TokenRequest,
// bound tokens, TokenReview with audiences). Everything listens on 127.0.0.1 (free
// ports) and lives in a temp dir removed with the object.
#ifndef WEFT_TESTS_KUBE_REAL_APISERVER_H_
#define WEFT_TESTS_KUBE_REAL_APISERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/k8s/kube_client.h"
#include "nlohmann/json.hpp"
#include "tests/lab/child_process.h"

namespace weft::testing {

class RealApiServer {
 public:
  struct Binaries {
    std::string kube_apiserver;  // scripts/kube-apiserver.sh's output
    std::string kubectl;         // Debian's, beside it
    std::string etcd = "/usr/bin/etcd";
  };
  // Finds the binaries: $WEFT_KUBE_APISERVER, else what scripts/kube-apiserver.sh cached
  // (running it, and so building on first use, when `build` is set). NotFound when there
  // is none.
  static absl::StatusOr<Binaries> Find(bool build);
  // `extra_ips`: more addresses for the serving certificate (the API server is reached
  // there through a forwarder, as pods reach it through the kubernetes Service).
  static absl::StatusOr<std::unique_ptr<RealApiServer>> Start(const Binaries& bin,
                                                              const std::vector<std::string>& extra_ips = {});
  int port() const { return port_; }
  ~RealApiServer();

  std::string url() const;  // https://127.0.0.1:PORT
  const std::string& dir() const { return dir_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& admin_token_file() const { return admin_token_file_; }
  k8s::KubeClient& admin() { return *admin_; }

  // A ServiceAccount token from the TokenRequest API (what the kubelet projects into a
  // pod), for `audiences` (empty: the API server's), optionally bound to a Pod.
  absl::StatusOr<std::string> Token(const std::string& ns, const std::string& service_account,
                                    const std::vector<std::string>& audiences, const std::string& bound_pod = "",
                                    int seconds = 3600);
  // Writes Token(...) to a file in dir() and returns its path.
  absl::StatusOr<std::string> TokenFile(const std::string& name, const std::string& ns,
                                        const std::string& service_account, const std::vector<std::string>& audiences);
  // Runs Debian's kubectl as the admin; returns its exit status, output in `out`.
  int Kubectl(const std::vector<std::string>& args, std::string* out);

 private:
  RealApiServer() = default;
  absl::Status WaitReady();

  Binaries bin_;
  std::string dir_, ca_file_, admin_token_file_, kubeconfig_;
  int port_ = 0;
  std::unique_ptr<lab::ChildProcess> etcd_, apiserver_;
  std::unique_ptr<k8s::KubeClient> admin_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_KUBE_REAL_APISERVER_H_
