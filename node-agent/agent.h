// weft-agent's runtime: the node's WireGuard device, its NAT verdict, its stream to the
// controller, and the peers and routes that follow from what the controller says.
#ifndef WEFT_NODE_AGENT_AGENT_H_
#define WEFT_NODE_AGENT_AGENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "lib/nat/nat_classifier.h"
#include "lib/net/nl_socket.h"
#include "lib/stun/shared_port.h"
#include "lib/wireguard/device.h"
#include "lib/wireguard/wireguard_go.h"
#include "node-agent/peer_plan.h"
#include "node-agent/forwarder_client.h"
#include "node-agent/mtu_prober.h"
#include "node-agent/tunnel_probe.h"
#include "lib/nat/path_mtu.h"
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
  std::vector<net::Endpoint> stun;
  // If set, STUN servers given by name: resolved before every NAT round instead of `stun`
  // (a fresh cluster's DNS needs pod networking, which this agent is about to set up).
  std::function<absl::StatusOr<std::vector<net::Endpoint>>()> resolve_stun;
  uint16_t wg_port = 51820;
  std::string wg_interface = "weft0";
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
  };
  Status GetStatus();
  wireguard::Device& device() { return *device_; }

 private:
  explicit Agent(AgentOptions opts) : opts_(std::move(opts)) {}
  using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>;

  // One stream with the controller, until it ends. `standby` says whether it ended
  // because the replica reached does not lead (its typed trailer).
  grpc::Status Session(v1::EndpointService::Stub& stub, std::stop_token stop, bool* standby);
  // opts_.pod_mtu, or the uplink's less WireGuard's overhead.
  int TunnelMtu(net::NlSocket& nl);
  void OnMessage(const v1::ControllerMessage& m);
  absl::Status OnWelcome(const v1::Welcome& w);   // mu_ held
  // nodes_ from claimed_: only what passes the agent's own checks (peer_guard.h).
  void GuardNodes();                               // mu_ held
  void StartRelay();                               // mu_ held
  void SetRelays(const google::protobuf::RepeatedPtrField<v1::RelayServer>& relays);  // mu_ held
  bool RelayListed(const net::Endpoint& server) const;                                 // mu_ held
  // Every 250 ms: WireGuard's view of each peer and probe answers into its path state
  // machine; its actions (probe, punch, move) carried out.
  void WatchPaths(std::stop_token stop);
  // The probe answers that arrived; mu_ held.
  void TakeProbeAnswers(int64_t now);
  // Path MTU acks that arrived, and the peers' probes answered; mu_ held.
  void TakeMtuAcks(int64_t now);
  // One peer's path MTU search: the path WireGuard uses (`d`), its counters, probes due.
  // True when the size found differs from the one applied (a reconcile applies it).
  bool WatchMtu(const PlannedPeer& p, const wireguard::PeerStatus& d, int64_t now);  // mu_ held
  // The peer node whose tunnel address is `ip`, or nullptr; mu_ held.
  const std::string* NodeByTunnelAddress(const net::IpAddress& ip) const;
  // Punches towards `to` from the WireGuard port (mu_ held).
  void Punch(const std::vector<net::Endpoint>& to);
  absl::Status Reconcile();                        // mu_ held
  std::optional<v1::NodeInfo> SelfInfo();         // mu_ held
  void SendSelf();                                 // mu_ held
  // What the data plane does per peer (the device's endpoint and handshake), for the
  // controller's status; nullopt when nothing changed since the last report.
  std::optional<v1::HealthReport> HealthIfChanged();
  // The node's SNAT rules against the WireGuard port, and the mitigation when allowed.
  v1::SnatReport CheckSnat(const nat::Verdict& verdict);

  AgentOptions opts_;
  wireguard::Key private_key_, public_key_;
  std::unique_ptr<wireguard::Device> device_;
  std::optional<wireguard::WireGuardGo> wg_process_;  // unset when adopted

  std::mutex mu_;
  std::vector<std::string> pod_cidrs_;
  std::map<std::string, v1::NodeInfo> claimed_;  // the controller's picture of the nodes, as received
  std::map<std::string, v1::NodeInfo> nodes_;    // what of it this agent accepts (GuardPeers)
  std::map<std::string, std::string> refused_;   // peer → what of it was refused, and why
  std::vector<net::IpPrefix> own_cidrs_;         // from Welcome
  std::vector<net::IpPrefix> cluster_cidrs_;     // from Welcome
  std::map<std::string, v1::PairDirective> directives_;
  std::vector<PlannedPeer> applied_;
  std::set<std::string> foreign_routes_;  // peer prefixes someone else routes (not touched); mu_
  std::map<std::string, int> routes_;  // remote pod CIDRs routed into the device → route MTU (0: none)
  uint64_t version_ = 0;
  std::string epoch_;  // what version_ counts within
  v1::HealthReport last_health_;
  v1::SnatReport snat_;
  std::vector<v1::RelayServer> relays_;     // from Welcome or RelayList; guarded by mu_
  // Our allocation, once one relay answered: held by the relay forwarder process (it
  // outlives this agent; the next one adopts it). Replaced only by relay_starter_.
  std::unique_ptr<ForwarderClient> relay_;
  // Each peer's path: the decision, what WireGuard does, probes, fall-backs and retries
  // (nat::PeerPath). Reconcile gives them decisions; WatchPaths, samples and time.
  std::map<std::string, nat::PeerPath> paths_;  // guarded by mu_
  std::optional<stun::SharedPortStun> punch_;  // raw sender from the WireGuard port; guarded by mu_
  std::string punch_error_;                    // the last punch failure logged; guarded by mu_
  std::optional<TunnelProbe> probe_;           // pings through the tunnel; guarded by mu_
  uint16_t probe_seq_ = 0;                     // guarded by mu_
  std::map<uint16_t, std::string> probing_;    // probe seq → peer; guarded by mu_
  // Each peer's path MTU search, and the path (class and endpoint) it is for.
  struct PeerMtu {
    nat::PathMtu search;
    std::string path;
  };
  std::map<std::string, PeerMtu> mtus_;        // guarded by mu_
  std::optional<MtuProber> mtu_prober_;        // guarded by mu_
  std::string mtu_prober_error_;               // guarded by mu_
  uint16_t mtu_seq_ = 0;                       // guarded by mu_
  int tunnel_mtu_ = 0;  // the device's MTU, once configured; guarded by mu_
  std::jthread relay_starter_;
  std::atomic<bool> probe_now_{false};
  std::atomic<bool> health_now_{false};  // a peer's endpoint moved: report it now
  // WireGuard's endpoint per peer at the last tick of WatchPaths; guarded by mu_.
  std::map<std::string, std::optional<net::Endpoint>> seen_endpoints_;
  // The controller's Reprobe asks are honoured at most this often; guarded by mu_.
  sys::TokenBucket reprobe_rate_{0.2, 2};
  std::vector<net::Endpoint> sightings_;  // from Reprobes, for the NAT monitor; guarded by mu_
  bool configured_ = false;
  bool synced_ = false;  // a snapshot arrived: nodes_ is the cluster; guarded by mu_
  std::optional<nat::Verdict> verdict_;
  std::mutex write_mu_;          // one writer at a time on the stream
  Stream* stream_ = nullptr;     // guarded by write_mu_
};

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_AGENT_H_
