// The gRPC EndpointService: one bidirectional stream per agent. Agents report their
// node; every connected agent gets a snapshot, then a delta per change, and a
// PairDirective per peer saying which path to use and why (lib/nat/path_strategy).
//
// Reactors (one small class per stream, like gRPC's route_guide) never block: what is
// to be sent goes into the stream's queue under the registry's lock and is written one
// message at a time as the previous write completes.
#ifndef WEFT_CONTROLLER_CONTROLLER_SERVICE_H_
#define WEFT_CONTROLLER_CONTROLLER_SERVICE_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "controller/endpoint_store.h"
#include "controller/pod_cidr_allocator.h"
#include "weft/v1/weft.grpc.pb.h"

namespace weft::controller {

class AgentStream;

class ControllerService final : public v1::EndpointService::CallbackService {
 public:
  // Standalone mode: agents authenticate with `join_token` and get their pod CIDR from
  // `pods` (a block of the cluster CIDR each).
  ControllerService(std::string join_token, PodCidrAllocator pods)
      : join_token_(std::move(join_token)), pods_(std::move(pods)) {}

  // Keeps the state in `path` (written atomically on every change) and loads it now if
  // it exists, so a restarted controller resumes its agents without changing any peer.
  absl::Status UseStateFile(const std::string& path);

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Connect(grpc::CallbackServerContext* ctx) override;

  // For status pages and tests.
  v1::Snapshot Snapshot() const;
  size_t connected() const;
  // The cluster as JSON (standalone mode's status page): every node with its NAT
  // verdict, whether its agent is connected, and the path decided for each pair.
  std::string StatusJson() const;

 private:
  friend class AgentStream;
  // Checks a Hello; on success registers `stream` and queues its snapshot or deltas.
  grpc::Status Join(AgentStream* stream, const v1::Hello& hello);
  // A node update from the stream authenticated as `node`.
  grpc::Status Update(const std::string& node, const v1::NodeInfo& info);
  void Leave(AgentStream* stream);
  void SaveLocked();
  // Queues directives between `node` and every other node, to both sides. Lock held.
  void QueueDirectivesLocked(const std::string& node);

  const std::string join_token_;
  mutable std::mutex mu_;
  EndpointStore store_;                               // guarded by mu_
  PodCidrAllocator pods_;                             // guarded by mu_
  std::map<std::string, AgentStream*> streams_;       // node → its live stream; guarded by mu_
  std::string state_file_;
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_CONTROLLER_SERVICE_H_
