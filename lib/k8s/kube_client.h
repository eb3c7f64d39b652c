// A small Kubernetes API client on cpp-httplib and nlohmann::json: get, create, replace,
// merge-patch (status subresources included) and watch streams. Paths are the API's own
// ("/api/v1/nodes", "/apis/weft.dev/v1alpha1/weftnodes/n1/status").
//
// Requests share one connection and are serialized; each Watch opens its own. The
// bearer token is re-read from its file every minute (projected tokens rotate).
#ifndef WEFT_LIB_K8S_KUBE_CLIENT_H_
#define WEFT_LIB_K8S_KUBE_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <stop_token>
#include <string>

#include "absl/status/statusor.h"
#include "lib/k8s/api_status.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Client;
}

namespace weft::k8s {

struct KubeConfig {
  std::string server;      // "https://10.96.0.1:443", or "http://127.0.0.1:8080" in tests
  std::string token_file;  // bearer token; empty: none
  std::string ca_file;     // PEM bundle for the server's certificate (https)
  std::chrono::seconds timeout{10};

  // The pod's own: KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount files under
  // /var/run/secrets/kubernetes.io/serviceaccount.
  static absl::StatusOr<KubeConfig> InCluster();
};

class KubeClient {
 public:
  explicit KubeClient(KubeConfig config);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  absl::StatusOr<nlohmann::json> Get(const std::string& path);
  // POST to a collection.
  absl::StatusOr<nlohmann::json> Create(const std::string& collection, const nlohmann::json& object);
  // PUT (optimistic concurrency: metadata.resourceVersion must be current, else Aborted).
  absl::StatusOr<nlohmann::json> Replace(const std::string& path, const nlohmann::json& object);
  // PATCH with application/merge-patch+json (RFC 7386).
  absl::StatusOr<nlohmann::json> MergePatch(const std::string& path, const nlohmann::json& patch);

  // Watches `path` from `resource_version` (with bookmarks) until the server ends the
  // stream (timeoutSeconds), `on_event` returns false, or `stop`. ERROR events are passed
  // to `on_event` like the others. Returns the transport's or the HTTP status's error.
  absl::Status Watch(const std::string& path, const std::string& resource_version, int timeout_seconds,
                     const std::function<bool(WatchEvent)>& on_event, std::stop_token stop);

  const KubeConfig& config() const { return config_; }

 private:
  std::unique_ptr<httplib::Client> NewHttpClient();
  std::string Token();
  absl::StatusOr<nlohmann::json> Send(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& content_type);

  static constexpr size_t kIdleConnections = 8;
  const KubeConfig config_;
  std::mutex mu_;  // guards the idle connections and the token cache
  std::vector<std::unique_ptr<httplib::Client>> idle_;  // keep-alive connections not in use
  std::string token_;
  std::chrono::steady_clock::time_point token_read_{};
};

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_KUBE_CLIENT_H_
