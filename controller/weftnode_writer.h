// Kubernetes mode: writes each node's WeftNode status when it changes, rate-limited (at
// most one write per node per interval, and a cluster-wide budget of writes per
// second), skipping writes that would change nothing. Creates the WeftNode (owned by its
// Node, so it goes when the Node goes) on first write. Only the leader writes.
#ifndef WEFT_CONTROLLER_WEFTNODE_WRITER_H_
#define WEFT_CONTROLLER_WEFTNODE_WRITER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "lib/k8s/kube_client.h"
#include "nlohmann/json.hpp"

namespace weft::controller {

struct WriterOptions {
  std::chrono::milliseconds per_node_interval{2000};
  int writes_per_second = 20;
};

class WeftNodeWriter {
 public:
  // `status_of(node)`: the status to write now (nullopt: nothing to write).
  // `owner_uid(node)`: the Node's UID for the owner reference ("" if unknown).
  WeftNodeWriter(k8s::KubeClient& client, std::function<std::optional<nlohmann::json>(const std::string&)> status_of,
                 std::function<std::string(const std::string&)> owner_uid, WriterOptions opts = {})
      : client_(client), status_of_(std::move(status_of)), owner_uid_(std::move(owner_uid)), opts_(opts) {}

  // Cheap and non-blocking: safe under other locks.
  void MarkDirty(const std::string& node);
  // Writes only while enabled (the leader); enabling forgets what was written before.
  void SetEnabled(bool enabled);
  // What an earlier leader wrote for `node` (its WeftNode status): conditions keep
  // their lastTransitionTime across a change of leader. Call before SetEnabled(true).
  void Seed(const std::string& node, const nlohmann::json& status);
  void Run(std::stop_token stop);
  int writes() const { return writes_.load(); }

 private:
  absl::Status Write(const std::string& node, const nlohmann::json& status);

  k8s::KubeClient& client_;
  const std::function<std::optional<nlohmann::json>(const std::string&)> status_of_;
  const std::function<std::string(const std::string&)> owner_uid_;
  const WriterOptions opts_;
  std::mutex mu_;
  std::set<std::string> dirty_;  // guarded by mu_
  bool enabled_ = false;         // guarded by mu_
  std::map<std::string, nlohmann::json> seeded_;  // node → conditions; guarded by mu_
  // Run's thread only:
  std::map<std::string, nlohmann::json> written_;     // as computed (no transition times)
  std::map<std::string, nlohmann::json> conditions_;  // as written (with transition times)
  std::map<std::string, std::chrono::steady_clock::time_point> last_write_;
  std::atomic<int> writes_{0};
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_WEFTNODE_WRITER_H_
