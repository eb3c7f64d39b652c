// List, then watch from the list's resourceVersion, forever: client-go's reflector in
// small. Bookmarks move the resume point; a 410 Gone (the resume point was compacted
// away) or a broken stream leads to a relist, which hands the handler the whole set
// again so that nothing deleted in the gap is missed.
#ifndef WEFT_LIB_K8S_REFLECTOR_H_
#define WEFT_LIB_K8S_REFLECTOR_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "lib/k8s/kube_client.h"

namespace weft::k8s {

struct ReflectorHandler {
  // After every list: the complete set of objects.
  std::function<void(std::vector<nlohmann::json> items)> replace;
  // ADDED, MODIFIED or DELETED.
  std::function<void(const std::string& type, const nlohmann::json& object)> event;
  // Errors worth a log line (the reflector retries on its own).
  std::function<void(const absl::Status&)> error;
};

class Reflector {
 public:
  Reflector(KubeClient& client, std::string path, ReflectorHandler handler, int watch_timeout_seconds = 300)
      : client_(client), path_(std::move(path)), handler_(std::move(handler)), watch_timeout_(watch_timeout_seconds) {}

  // Runs until `stop`.
  void Run(std::stop_token stop);

  bool synced() const { return lists_.load() > 0; }
  int lists() const { return lists_.load(); }
  std::string resource_version() const;

 private:
  // One list + watches until the watch can no longer resume; returns why.
  absl::Status ListAndWatch(std::stop_token stop);

  KubeClient& client_;
  const std::string path_;
  const ReflectorHandler handler_;
  const int watch_timeout_;
  std::atomic<int> lists_{0};
  mutable std::mutex mu_;
  std::string rv_;  // guarded by mu_
};

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_REFLECTOR_H_
