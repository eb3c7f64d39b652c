// An in-process Kubernetes API server for tests: the real JSON wire format over HTTP on
// loopback. Enough of kube-apiserver for Weft, and faithful where Weft depends on it:
//   - list (kind ...List, metadata.resourceVersion) and get, 404 as a Status object;
//   - create (409 AlreadyExists), replace (409 Conflict on a stale resourceVersion),
//     JSON merge patch (415 for other patch types), delete;
//   - status subresources: writes to the object ignore status, writes to /status
//     change only status; a write that changes nothing keeps the resourceVersion;
//   - watch streams (newline-delimited events, ADDED/MODIFIED/DELETED, BOOKMARK when
//     allowWatchBookmarks, ERROR 410 Gone for a compacted resourceVersion, the stream
//     ends after timeoutSeconds);
//   - equality-based label selectors on list and watch (an object that stops matching is
//     DELETED for that watch, one that starts matching ADDED);
//   - bearer-token authentication (401) and TokenReview with audiences.
// Resources: nodes, pods, weftnodes.weft.dev (cluster-scoped, status), leases, daemonsets,
// secrets, configmaps, endpointslices.
#ifndef WEFT_TESTS_KUBE_FAKE_APISERVER_H_
#define WEFT_TESTS_KUBE_FAKE_APISERVER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace weft::testing {

class FakeApiServer {
 public:
  struct User {
    std::string username;  // "system:serviceaccount:kube-system:weft-agent"
    std::vector<std::string> groups;
    std::vector<std::string> audiences;  // the token's; TokenReview checks them
    std::map<std::string, std::vector<std::string>> extra;
    // When set, TokenReview authenticates the token whatever audiences were asked for and
    // reports these in status.audiences (a misbehaving or older server), so a client's
    // own check of status.audiences can be tested.
    std::optional<std::vector<std::string>> reviewed_audiences;
  };

  // Listens on 127.0.0.1 (a free port). Requests must carry a known bearer token when
  // any has been added with AddToken.
  static absl::StatusOr<std::unique_ptr<FakeApiServer>> Start();
  ~FakeApiServer();

  std::string url() const;
  struct Resource;  // a kind the server knows  // "http://127.0.0.1:PORT"

  void AddToken(const std::string& token, User user);
  // Direct access, as an admin with kubectl would have (no HTTP, same semantics):
  // `path` is an object's path ("/api/v1/nodes/n1"). Put creates or replaces, status
  // included.
  absl::StatusOr<nlohmann::json> Put(const std::string& path, nlohmann::json object);
  std::optional<nlohmann::json> Get(const std::string& path) const;
  absl::Status Delete(const std::string& path);
  // Forgets the event history up to now: watches that start or resume from an older
  // resourceVersion get 410 Gone (live watches are not affected).
  void Compact();
  // How often `method path` was requested (for example "PATCH /apis/.../status").
  int Requests(const std::string& method_and_path) const;
  int watches_started() const;

 private:
  struct Event {
    uint64_t rv;
    std::string collection;  // resource path without namespace, e.g. "weft.dev/weftnodes"
    std::string ns;
    std::string type;
    nlohmann::json object;
    nlohmann::json previous;  // MODIFIED: the object before (label selectors turn it into ADDED/DELETED)
  };
  FakeApiServer() = default;
  void Handle(const httplib::Request& req, httplib::Response& res);
  void Watch(const Resource& r, const std::string& ns, const httplib::Request& req, httplib::Response& res);
  // Writes under mu_; returns the stored object and whether it changed.
  nlohmann::json StoreLocked(const Resource& r, const std::string& ns, const std::string& name, nlohmann::json obj,
                             const std::string& type);

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;
  uint64_t rv_ = 100;
  uint64_t compacted_ = 0;  // watches from a resourceVersion below this get 410
  std::map<std::string, nlohmann::json> objects_;  // object path → object
  std::vector<Event> events_;
  std::map<std::string, User> tokens_;
  std::map<std::string, int> requests_;
  int watches_ = 0;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_KUBE_FAKE_APISERVER_H_
