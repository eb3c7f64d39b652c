// The gRPC EndpointService: one bidirectional stream per agent. Agents report their
// node; every connected agent gets a snapshot, then a delta per change, and a
// PairDirective per peer saying which path to use and why (lib/nat/path_strategy).
//
// Reactors (one small class per stream, like gRPC's route_guide) never block: what is
// to be sent goes into the stream's queue under the registry's lock and is written one
// message at a time as the previous write completes.
#ifndef WEFT_CONTROLLER_CONTROLLER_SERVICE_H_
#define WEFT_CONTROLLER_CONTROLLER_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <chrono>

#include "controller/admission_pool.h"
#include "controller/endpoint_store.h"
#include "controller/pod_cidr_allocator.h"
#include "controller/weftnode.h"
#include "lib/sys/log_limiter.h"
#include "weft/v1/weft.grpc.pb.h"

namespace weft::controller {

class AgentStream;

class ControllerService final : public v1::EndpointService::CallbackService {
 public:
  // Kubernetes mode: checks a Hello (the agent's token, its node) and returns the
  // node's pod CIDRs, or the status to refuse it with. May block (TokenReview): it runs
  // on a thread of its own, never on gRPC's.
  using Admit = std::function<absl::StatusOr<std::vector<std::string>>(const v1::Hello&)>;
  // Told (with the lock held: only note it, do not call back) which node's view changed.
  using OnChange = std::function<void(const std::string& node)>;

  // Standalone mode: agents authenticate with `join_token` and get their pod CIDRs from
  // `pods` (a block of each cluster CIDR: one per address family, dual-stack with two).
  ControllerService(std::string join_token, std::vector<PodCidrAllocator> pods);
  ControllerService(std::string join_token, PodCidrAllocator pods);
  // Standalone: refuse the shared join token; each node joins with its own
  // (node_token.h), which admits that node's name only.
  void SetNodeTokensOnly(bool only) { node_tokens_only_ = only; }
  // Kubernetes mode. Serves nothing until SetLeading(true).
  ControllerService(Admit admit, std::vector<std::string> cluster_cidrs);
  ~ControllerService();

  // Kubernetes mode: admission checks run on this many threads; Hellos beyond this many
  // waiting for one (in all, or from one connection) are refused at once
  // (RESOURCE_EXHAUSTED; agents retry). Connections are served round-robin.
  static constexpr size_t kAdmissionThreads = 4;
  static constexpr size_t kAdmissionQueue = 1024;
  static constexpr size_t kAdmissionPerConnection = 64;
  // A connection that has not joined (Hello checked, admitted) by then is ended
  // (DEADLINE_EXCEEDED): an open stream costs memory, and only agents that join get it.
  static constexpr std::chrono::milliseconds kHelloDeadline{10000};
  void SetHelloDeadline(std::chrono::milliseconds d) { hello_deadline_ms_ = d.count(); }

  // Kubernetes mode: only the Lease holder serves. Becoming leader starts a new epoch
  // from `nodes` (what the previous leader published), so agents get a snapshot with
  // every node they already peer with; losing it ends every stream (UNAVAILABLE), and
  // agents reconnect to the new leader.
  void SetLeading(bool leading, const std::vector<v1::NodeInfo>& nodes = {});
  bool leading() const;
  // The Node is gone from the cluster: its peers are removed everywhere.
  void RemoveNode(const std::string& node);
  // Standalone: the admin says the node is gone or reinstalled: removed everywhere, its
  // pinned key with it (the next agent of that name may join with a new key). Whether
  // the node was known.
  bool Forget(const std::string& node);
  void SetOnChange(OnChange f);
  // Where joins and refusals are told, one line each, rate-limited per kind (a burst of
  // 5, then one per 10 s saying how many were held back): an admin sees why a node does
  // not join without 5,000 lines when a whole cluster rejoins a new leader.
  void SetLog(std::function<void(const std::string&)> log);
  // Relays handed to agents in Welcome, each with credentials derived from `secret`;
  // a change goes to every connected agent at once (RelayList).
  void SetRelays(std::vector<net::Endpoint> relays, std::string secret);
  std::vector<net::Endpoint> relays() const;
  // Sends every connected agent the relays with fresh credentials (they last 24 h; an
  // agent needs valid ones for its next allocation).
  void RenewRelayCredentials();
  void SetProviderId(const std::string& node, const std::string& provider_id);
  // The aws-node DaemonSet's SNAT settings (Kubernetes mode, EKS): RANDOMIZESNAT's
  // value ("prng" when unset) and EXTERNALSNAT; nullopt when there is no aws-node.
  void SetAwsNode(std::optional<std::string> randomize_snat, bool external_snat);
  // What the node's WeftNode status shows; nullopt for a node nobody reported.
  std::optional<NodeView> View(const std::string& node) const;

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
  // What agents sent that was refused or dropped, in Prometheus text format.
  std::string MetricsText() const;

 private:
  friend class AgentStream;
  // Checks a Hello; on success registers `stream` and queues its snapshot or deltas.
  grpc::Status Join(AgentStream* stream, const v1::Hello& hello);
  // Join, with the pod CIDRs Admit gave (Kubernetes mode).
  grpc::Status JoinAdmitted(AgentStream* stream, const v1::Hello& hello, const std::vector<std::string>& pod_cidrs);
  void Health(const std::string& node, const v1::HealthReport& report);
  void NotifyLocked(const std::string& node);
  void PushRelaysLocked();
  // The relays with `node`'s credentials (TURN REST scheme, valid 24 h).
  google::protobuf::RepeatedPtrField<v1::RelayServer> RelayServersLocked(const std::string& node) const;
  nat::SnatDiagnosis DiagnoseLocked(const v1::NodeInfo& node) const;
  // What `peer` sees of a node (`h`, from its health report) against the node's STUN
  // verdict `r`: "peer P sees IP:PORT, STUN sees IP:PORT" when the node's NAT is thought to
  // keep one port for every destination and the peer sees another; else nullopt.
  static std::optional<std::string> SightingAgainstStun(const v1::NatReport& r, const std::string& peer,
                                                        const v1::PeerHealth& h);
  // A peer sees a node's direct traffic come from another address than STUN said (and
  // not one of the node's own): a new uplink, maybe before the node's next round knows.
  static std::optional<std::string> NewAddressSighting(const v1::NodeInfo& node, const std::string& peer,
                                                       const v1::PeerHealth& h);
  // Asks each node the reporter sees at another port (or address) than STUN did to probe
  // at once, with a fresh flow (Reprobe).
  void AskReprobeLocked(const std::string& reporter, const v1::HealthReport& report);
  // The node's peers: the decision for each pair and what the node reported of it.
  std::vector<PeerView> PeerViewsLocked(const v1::NodeInfo& self) const;  // mu_ held
  // A node update from the stream authenticated as `node`.
  grpc::Status Update(const std::string& node, const v1::NodeInfo& info);
  void Leave(AgentStream* stream);
  // A new stream, not joined yet (Tick ends it after the Hello deadline).
  void Arrived(AgentStream* stream);
  // A stream past its message rate: it reads again at the next tick.
  void Pause(AgentStream* stream);
  // Every 100 ms (ticker_): paused streams read again; unjoined ones past the Hello
  // deadline end.
  void StartTicker();
  void Tick();
  void SaveLocked();
  // Queues directives between `node` and every other node, to both sides. Lock held.
  void QueueDirectivesLocked(const std::string& node);

  const std::string join_token_;
  const Admit admit_;                                 // set in Kubernetes mode
  const std::vector<std::string> cluster_cidrs_;      // Kubernetes mode (standalone: pods_)
  mutable std::mutex mu_;
  // Written under mu_; atomic so that a stream finishing with mu_ held (or not) can read it.
  std::atomic<bool> leading_{true};
  std::string epoch_;                                 // guarded by mu_
  std::map<std::string, v1::HealthReport> health_;    // guarded by mu_
  // Per node, the sightings it was asked to reprobe for (AskReprobeLocked); guarded by mu_.
  std::map<std::string, std::set<std::string>> reprobes_asked_;
  static constexpr size_t kMaxReprobesPerNode = 32;
  std::map<std::string, std::string> provider_ids_;   // guarded by mu_
  std::optional<std::string> aws_randomize_snat_;     // guarded by mu_
  bool aws_external_snat_ = false;                    // guarded by mu_
  OnChange on_change_;
  std::vector<net::Endpoint> relays_;  // guarded by mu_
  std::string relay_secret_;           // guarded by mu_
  EndpointStore store_;                               // guarded by mu_
  std::vector<PodCidrAllocator> pods_;                // standalone mode; guarded by mu_
  std::map<std::string, AgentStream*> streams_;       // node → its live stream; guarded by mu_
  // node → the pod CIDRs the controller gave it (the only ones its peers ever get).
  std::map<std::string, std::vector<std::string>> assigned_;  // guarded by mu_
  std::map<AgentStream*, int64_t> unjoined_;  // stream → when it arrived (steady ms); guarded by mu_
  std::set<AgentStream*> paused_;             // streams not reading until the next tick; mu_
  std::atomic<int64_t> hello_deadline_ms_{kHelloDeadline.count()};
  std::atomic<bool> node_tokens_only_{false};
  std::atomic<uint64_t> input_refused_{0};         // messages refused (the stream ends)
  // Joins and refusals told (SetLog), rate-limited.
  void Note(const std::string& kind, const std::string& line);
  void NoteJoin(const v1::Hello& hello, const grpc::Status& s);
  std::mutex log_mu_;
  std::function<void(const std::string&)> log_;
  sys::LogLimiter log_limiter_{5, 10000};
  std::atomic<uint64_t> input_dropped_rate_{0};    // messages over an agent's rate
  std::atomic<uint64_t> input_dropped_health_{0};  // health entries about no peer of the node
  std::string state_file_;
  // Last: destroyed first, so no admission runs against a half-destroyed service.
  std::unique_ptr<AdmissionPool> admission_;          // Kubernetes mode
  std::jthread ticker_;  // Tick(), every 100 ms
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_CONTROLLER_SERVICE_H_
