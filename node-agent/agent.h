// weft-agent's runtime: the node's WireGuard device, its NAT verdict, its stream to the
// controller, and the peers and routes that follow from what the controller says.
#ifndef WEFT_NODE_AGENT_AGENT_H_
#define WEFT_NODE_AGENT_AGENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lib/nat/nat_classifier.h"
#include "lib/nat/port_probe.h"
#include "lib/net/nl_socket.h"
#include "lib/stun/shared_port.h"
#include "lib/wireguard/backend.h"
#include "lib/wireguard/device.h"
#include "lib/wireguard/wireguard_go.h"
#include "node-agent/peer_plan.h"
#include "node-agent/peer_reconciler.h"
#include "node-agent/forwarder_client.h"
#include "node-agent/mtu_prober.h"
#include "node-agent/tunnel_probe.h"
#include "lib/nat/path_mtu.h"
#include "lib/sys/coalescer.h"
#include "lib/sys/token_bucket.h"
#include "weft/v1/weft.grpc.pb.h"

namespace weft::agent {

struct AgentOptions {
  std::string node;
  std::string controller;  // host:port
  std::string join_token;
  // Kubernetes mode: the projected ServiceAccount token, read again for every
  // connection (the kubelet rotates it). Used instead of join_token when set.
  std::string token_file;
  std::chrono::milliseconds health_interval{5000};
  // Install a port-preserving SNAT rule for the WireGuard port ahead of the node's
  // randomizing rules, when there are any (off by default; see snat_guard.h).
  bool snat_mitigation = false;
  bool insecure = false;
  std::string ca_file;     // PEM roots for the controller's certificate
  std::vector<net::Endpoint> stun;   // IPv4 STUN servers: the NAT verdict's
  std::vector<net::Endpoint> stun6;  // IPv6 ones
  // If set, STUN servers given by name: resolved before every NAT round instead of `stun`
  // (a fresh cluster's DNS needs pod networking, which this agent is about to set up).
  std::function<absl::StatusOr<std::vector<net::Endpoint>>()> resolve_stun;
  uint16_t wg_port = 51820;
  std::string wg_interface = "weft0";
  // The kernel's WireGuard when the kernel makes the device (auto), or as asked; a node
  // whose device is of the other backend has it replaced (wireguard/backend.h).
  wireguard::BackendChoice wireguard = wireguard::BackendChoice::kAuto;
  std::string state_dir = "/var/lib/weft";
  // The relay forwarder runs beside the agent (the chart's sidecar container, at
  // state_dir/relay-forwarder.sock): used, never launched. Otherwise the agent launches
  // it as a process of its own.
  bool relay_forwarder_sidecar = false;
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::string cni_data_dir = "/run/weft/cni";
  // The WireGuard device's and the pods' MTU; 0: the uplink's MTU less WireGuard's
  // overhead (net::TunnelMtu), found when the node is configured.
  int pod_mtu = 0;
  // Each peer's path MTU is probed through the tunnel (lib/nat/path_mtu) on this UDP port
  // of the device, and applied to the routes to its pod CIDRs; 0: not (the device's MTU).
  uint16_t mtu_probe_port = 51821;
  std::chrono::milliseconds nat_interval{15000};
};

// The agent's work, by concern, one file each: the controller session (agent_session.cc),
// the node's set-up from the Welcome (agent_setup.cc), what it reports of itself
// (agent_report.cc), the relay supervisor (agent_relay.cc), the reconcile that writes the
// device and routes (agent_reconcile.cc), and the path watch (agent_paths.cc).
//
// Threads and locks: mu_ guards the agent's state, and no I/O happens under it (no device,
// netlink, nft, gRPC or forwarder call): each thread copies what it needs, does its I/O,
// and takes mu_ again to record what came of it. The device and the routes are written by
// one thread only, the reconciler (a sys::Coalescer: every change asks for a reconcile,
// and a burst of changes, such as a report's N-1 directives, makes one). Lock order:
// write_mu_ and punch_mu_ are never held with mu_.
class Agent {
 public:
  // Loads (or creates) the key, adopts a running userspace WireGuard of the interface or
  // starts one. The device survives the agent: a restarted agent adopts it, so the data
  // plane never stops because the agent did.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(AgentOptions opts);
  ~Agent();

  // Serves until `stop`: NAT monitoring, and the controller stream with reconnects.
  void Run(std::stop_token stop);

  // What /readyz and /metrics report.
  struct Status {
    bool connected = false;       // a live stream to the controller
    bool configured = false;      // pod CIDRs known, conflist written
    std::optional<nat::Verdict> nat;
    std::vector<PlannedPeer> peers;
    uint64_t version = 0;
    bool relay_tcp = false;  // our relay allocation is over TCP
    size_t refused_peers = 0;  // peers some of whose state from the controller was refused
    uint64_t reconciles = 0;   // device and route reconciles so far
    uint64_t controller_messages = 0;  // received from the controller so far
    wireguard::Backend backend = wireguard::Backend::kUserspace;
  };
  Status GetStatus();
  wireguard::Device& device() { return *device_; }

 private:
  explicit Agent(AgentOptions opts) : opts_(std::move(opts)) {}
  using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>;

  // The WireGuard device, of the backend opts_.wireguard and the kernel allow: adopted
  // with its peers (`adopted`) when one of that backend is there, else made.
  absl::StatusOr<std::unique_ptr<wireguard::Device>> OpenDevice(net::NlSocket& nl, std::vector<PlannedPeer>* adopted);

  // --- controller session (agent_session.cc)
  // Connects, serves a session, waits (backoff, jitter), again, until `stop`.
  void ServeController(std::stop_token stop);
  // One stream with the controller, until it ends. `standby` says whether it ended
  // because the replica reached does not lead (its typed trailer).
  grpc::Status Session(v1::EndpointService::Stub& stub, std::stop_token stop, bool* standby);
  // A connection that failed before any stream: logged when the reason changes and at
  // most every 30 s while it stays (session thread only).
  void LogConnectFailure(const grpc::Status& s);
  std::string last_connect_failure_;
  int64_t last_connect_failure_ms_ = 0;
  void OnMessage(const v1::ControllerMessage& m);
  // nodes_ from claimed_: only what passes the agent's own checks (peer_guard.h).
  void GuardNodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- node set-up (agent_setup.cc)
  // The Welcome checked, then the node set up from it (addresses, egress, MTU, conflist),
  // and recorded. On the session thread; nothing of a refused Welcome is applied.
  absl::Status OnWelcome(const v1::Welcome& w) ABSL_LOCKS_EXCLUDED(mu_);
  // opts_.pod_mtu, or the uplink's less WireGuard's overhead.
  int TunnelMtu(net::NlSocket& nl);

  // --- what the node reports (agent_report.cc)
  // The node's report: host candidates (a netlink dump, outside mu_), then its state.
  std::optional<v1::NodeInfo> SelfInfo() ABSL_LOCKS_EXCLUDED(mu_);
  // The node's own addresses it publishes as host candidates (a netlink dump), also
  // kept in host_addresses_.
  std::vector<net::IpAddress> HostAddresses() ABSL_LOCKS_EXCLUDED(mu_);
  void SendSelf() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  void Write(const v1::AgentMessage& m) ABSL_LOCKS_EXCLUDED(write_mu_);
  // What the data plane does per peer (the device's endpoint and handshake), for the
  // controller's status; nullopt when nothing changed since the last report.
  std::optional<v1::HealthReport> HealthIfChanged() ABSL_LOCKS_EXCLUDED(mu_);
  // The node's SNAT rules against the WireGuard port, and the mitigation when allowed
  // (runs nft/iptables; on the NAT monitor's thread, the only writer of snat_).
  v1::SnatReport CheckSnat(const nat::Verdict& verdict) ABSL_LOCKS_EXCLUDED(mu_);
  // The NAT monitor's runs (its thread).
  void OnNatReport(const nat::PortProbeReport& r, bool changed) ABSL_LOCKS_EXCLUDED(mu_);

  // --- relay supervisor (agent_relay.cc)
  void SetRelays(const google::protobuf::RepeatedPtrField<v1::RelayServer>& relays) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartRelay() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SuperviseRelay(std::stop_token st) ABSL_LOCKS_EXCLUDED(mu_);
  bool RelayListed(const net::Endpoint& server) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each peer's local relay proxy (asks the forwarder: outside mu_).
  std::map<std::string, net::Endpoint> RelayProxies() ABSL_LOCKS_EXCLUDED(mu_);

  // --- reconcile (agent_reconcile.cc): the reconciler thread only.
  // What a reconcile is asked for with (sys::Coalescer flags).
  static constexpr uint32_t kReport = 1;  // then send the node's report
  void ReconcileAndReport(uint32_t flags) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Reconcile() ABSL_LOCKS_EXCLUDED(mu_);
  // Each peer's pod CIDRs routed into the device, with its path MTU when below the
  // device's; only routes Weft made are replaced or removed.
  absl::Status SyncRoutes(const std::vector<PlannedPeer>& desired);
  // Asks the reconciler for a run (never blocks).
  void AskReconcile(uint32_t flags = 0);

  // --- path watch (agent_paths.cc): its own thread.
  // Every 250 ms: WireGuard's view of each peer and probe answers into its path state
  // machine; its actions (probe, punch, move) carried out.
  void WatchPaths(std::stop_token stop) ABSL_LOCKS_EXCLUDED(mu_);
  // The probe answers that arrived.
  void TakeProbeAnswers() ABSL_LOCKS_EXCLUDED(mu_);
  // Path MTU acks that arrived, and the peers' probes answered.
  void TakeMtuAcks() ABSL_LOCKS_EXCLUDED(mu_);
  // One peer's path MTU search: the path WireGuard uses (`d`), its counters; the probe due
  // (size) in `send`. True when the size found differs from the one applied.
  struct MtuSend {
    std::string node;
    net::IpAddress to;
    int size = 0;
  };
  bool WatchMtu(const PlannedPeer& p, const wireguard::PeerStatus& d, int64_t now, std::vector<MtuSend>* send)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The peer node whose tunnel address is `ip`, or nullptr.
  const std::string* NodeByTunnelAddress(const net::IpAddress& ip) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Punches towards `to` from the WireGuard port.
  void Punch(const std::vector<net::Endpoint>& to) ABSL_LOCKS_EXCLUDED(punch_mu_, mu_);

  AgentOptions opts_;
  wireguard::Key private_key_, public_key_;
  std::unique_ptr<wireguard::Device> device_;  // written by the reconciler only (after Create)
  wireguard::Backend backend_ = wireguard::Backend::kUserspace;
  std::optional<wireguard::WireGuardGo> wg_process_;  // unset when adopted

  absl::Mutex mu_;
  std::vector<std::string> pod_cidrs_ ABSL_GUARDED_BY(mu_);
  // What HostAddresses() found last (each report refreshes it); unset before the first.
  std::optional<std::vector<net::IpAddress>> host_addresses_ ABSL_GUARDED_BY(mu_);
  // The controller's picture of the nodes, as received, and what of it this agent accepts.
  std::map<std::string, v1::NodeInfo> claimed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::NodeInfo> nodes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> refused_ ABSL_GUARDED_BY(mu_);  // peer → what was refused, and why
  std::vector<net::IpPrefix> own_cidrs_ ABSL_GUARDED_BY(mu_);      // from Welcome
  std::vector<net::IpPrefix> cluster_cidrs_ ABSL_GUARDED_BY(mu_);  // from Welcome
  std::map<std::string, v1::PairDirective> directives_ ABSL_GUARDED_BY(mu_);
  // The peers: what the device holds, and each pair's path machine (nat::PeerPath).
  // Reconcile plans and commits; the path watch gives the machines samples and time.
  std::optional<PeerReconciler> peers_ ABSL_GUARDED_BY(mu_);
  // Peers whose endpoint the path watch wants written again (WireGuard roamed away).
  std::set<std::string> reassert_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::string epoch_ ABSL_GUARDED_BY(mu_);  // what version_ counts within
  v1::HealthReport last_health_ ABSL_GUARDED_BY(mu_);
  v1::SnatReport snat_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RelayServer> relays_ ABSL_GUARDED_BY(mu_);  // from Welcome or RelayList
  // Our allocation, once one relay answered: held by the relay forwarder process (it
  // outlives this agent; the next one adopts it). Replaced only by the relay supervisor;
  // shared so that its calls are made outside mu_.
  std::shared_ptr<ForwarderClient> relay_ ABSL_GUARDED_BY(mu_);
  // Each peer's path MTU search, and the path (class and endpoint) it is for.
  struct PeerMtu {
    nat::PathMtu search;
    std::string path;
  };
  std::map<std::string, PeerMtu> mtus_ ABSL_GUARDED_BY(mu_);
  int tunnel_mtu_ ABSL_GUARDED_BY(mu_) = 0;  // the device's MTU, once configured
  // WireGuard's endpoint per peer at the last tick of the path watch.
  std::map<std::string, std::optional<net::Endpoint>> seen_endpoints_ ABSL_GUARDED_BY(mu_);
  // The controller's Reprobe asks are honoured at most this often.
  sys::TokenBucket reprobe_rate_ ABSL_GUARDED_BY(mu_){0.2, 2};
  std::vector<net::Endpoint> sightings_ ABSL_GUARDED_BY(mu_);  // from Reprobes, for the NAT monitor
  bool configured_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;  // a snapshot arrived: nodes_ is the cluster
  std::optional<nat::Verdict> verdict_ ABSL_GUARDED_BY(mu_);
  std::optional<nat::Verdict> verdict6_ ABSL_GUARDED_BY(mu_);  // IPv6's, with IPv6 STUN servers

  // The reconciler thread's own: the routes it made (remote pod CIDR → route MTU, 0:
  // none), and peer prefixes someone else routes (not touched).
  std::map<std::string, int> routes_;
  std::set<std::string> foreign_routes_;
  // The path watch thread's own: its sockets and the probes in flight.
  std::optional<TunnelProbe> probe_;            // pings through the tunnel
  uint16_t probe_seq_ = 0;
  std::map<uint16_t, std::string> probing_;     // probe seq → peer
  std::optional<MtuProber> mtu_prober_;
  std::string mtu_prober_error_;
  uint16_t mtu_seq_ = 0;

  absl::Mutex punch_mu_;
  std::optional<stun::SharedPortStun> punch_ ABSL_GUARDED_BY(punch_mu_);  // raw sender from the WireGuard port
  std::string punch_error_ ABSL_GUARDED_BY(punch_mu_);                    // the last punch failure logged

  std::atomic<uint64_t> controller_messages_{0};
  std::atomic<bool> probe_now_{false};
  std::atomic<bool> health_now_{false};  // a peer's endpoint moved: report it now
  absl::Mutex write_mu_;                 // one writer at a time on the stream
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;

  std::jthread relay_supervisor_;
  // Last: made before the threads that ask it, gone before what its work uses.
  std::optional<sys::Coalescer> reconciler_;
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_AGENT_H_
