#include "node-agent/agent.h"

#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/api/node_nat.h"
#include "lib/nat/nat_monitor.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_link.h"
#include "lib/status/status_macros.h"
#include "lib/wireguard/genl_wireguard.h"
#include "lib/wireguard/uapi.h"
#include "node-agent/agent_internal.h"
#include "node-agent/node_files.h"

namespace weft::agent {

void Log(const std::string& s) {
  const absl::Time now = absl::Now();
  std::fprintf(stderr, "weft-agent: %s %s\n", absl::FormatTime("%H:%M:%E3S", now, absl::UTCTimeZone()).c_str(),
               s.c_str());
}

void AddHostCandidates(v1::NodeInfo& n, const std::vector<net::IpAddress>& hosts, uint16_t wg_port) {
  for (const auto& ip : hosts) {
    auto* c = n.add_candidates();
    c->set_type(v1::CANDIDATE_TYPE_HOST);
    c->mutable_endpoint()->set_ip(ip.ToString());
    c->mutable_endpoint()->set_port(wg_port);
  }
}

std::optional<net::IpAddress> TunnelAddressV4(const v1::NodeInfo& n) {
  for (const auto& c : n.pod_cidrs()) {
    auto p = net::IpPrefix::ParseNetwork(c);
    if (p.ok() && p->address.is_v4()) return p->First().Plus(1);
  }
  return std::nullopt;
}

std::optional<net::IpAddress> TunnelAddress(const v1::NodeInfo& n) {
  if (auto v4 = TunnelAddressV4(n)) return v4;
  for (const auto& c : n.pod_cidrs()) {
    auto p = net::IpPrefix::ParseNetwork(c);
    if (p.ok()) return p->First().Plus(1);
  }
  return std::nullopt;
}

namespace {

// The peers of a device this agent adopts, as if it had planned them.
std::vector<PlannedPeer> FromDevice(const wireguard::DeviceStatus& st) {
  std::vector<PlannedPeer> out;
  for (const auto& p : st.peers) {
    PlannedPeer pp;
    pp.config.public_key = p.public_key;
    pp.config.endpoint = p.endpoint;
    pp.config.persistent_keepalive = p.persistent_keepalive;
    pp.config.allowed_ips = p.allowed_ips;
    pp.config.replace_allowed_ips = true;
    out.push_back(std::move(pp));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions opts) {
  std::unique_ptr<Agent> a(new Agent(std::move(opts)));
  mkdir(a->opts_.state_dir.c_str(), 0700);
  ASSIGN_OR_RETURN(a->private_key_, LoadOrCreateKey(a->opts_.state_dir + "/wireguard.key"));
  ASSIGN_OR_RETURN(a->public_key_, wireguard::Key::PublicFrom(a->private_key_));
  ASSIGN_OR_RETURN(net::NlSocket nl, net::NlSocket::Open());
  std::vector<PlannedPeer> adopted;
  ASSIGN_OR_RETURN(a->device_, a->OpenDevice(nl, &adopted));
  RETURN_IF_ERROR(a->device_->Set({.private_key = a->private_key_, .listen_port = a->opts_.wg_port}));
  ASSIGN_OR_RETURN(net::LinkInfo link, net::GetLink(nl, a->opts_.wg_interface));
  RETURN_IF_ERROR(net::SetLinkUp(nl, link.index));
  std::vector<std::string> pod_cidrs;
  if (auto saved = ReadWholeFile(a->opts_.state_dir + "/pod_cidrs"); saved.ok()) {
    for (absl::string_view c : absl::StrSplit(*saved, '\n', absl::SkipWhitespace())) pod_cidrs.emplace_back(c);
  }
  // The relay forwarder a previous agent left running: adopted while its relay answers
  // (the supervisor moves on if the controller no longer lists it); stopped otherwise.
  std::shared_ptr<ForwarderClient> relay;
  if (auto f = ForwarderClient::Connect(RelayForwarderSocket(a->opts_.state_dir)); f.ok()) {
    if ((*f)->state().allocated && (*f)->alive()) {
      Log(absl::StrCat("adopting the running relay forwarder (relay ", (*f)->server().ToString(),
                       (*f)->tcp() ? " (TCP)" : "", ", allocated ", (*f)->relayed().ToString(), ")"));
      relay = *std::move(f);
    } else if ((*f)->state().allocated) {  // an idle one (the chart's sidecar) is left as it is
      Log("stopping a relay forwarder whose relay no longer answers");
      (void)(*f)->Stop();
    }
  }
  {
    absl::MutexLock l(&a->mu_);
    a->peers_.emplace(a->opts_.node, std::move(adopted));
    a->pod_cidrs_ = std::move(pod_cidrs);
    a->relay_ = std::move(relay);
  }
  Agent* raw = a.get();
  a->reconciler_.emplace([raw](uint32_t flags) { raw->ReconcileAndReport(flags); });
  Log(absl::StrCat("node ", a->opts_.node, ", WireGuard ", a->opts_.wg_interface, " on UDP ", a->opts_.wg_port,
                   ", public key ", a->public_key_.ToBase64()));
  return a;
}

namespace {

// Whether this kernel makes WireGuard links (loading the module if it can): a throwaway
// link is made and removed. The device's own name is not used: a device may be there.
bool KernelMakesWireGuard(net::NlSocket& nl) {
  constexpr char kProbe[] = "weftwgprobe";
  (void)net::DeleteLink(nl, kProbe);  // left by an agent killed right here
  absl::Status s = net::CreateLink(nl, kProbe, "wireguard");
  if (!s.ok()) {
    if (!absl::IsUnimplemented(s)) Log(absl::StrCat("kernel WireGuard: ", s.ToString()));
    return false;
  }
  (void)net::DeleteLink(nl, kProbe);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<wireguard::Device>> Agent::OpenDevice(net::NlSocket& nl, std::vector<PlannedPeer>* adopted) {
  const std::string& name = opts_.wg_interface;
  std::optional<wireguard::Backend> existing;
  if (auto l = net::GetLink(nl, name); l.ok()) {
    existing = wireguard::BackendOfLinkKind(l->kind);
    if (!existing) {
      return absl::FailedPreconditionError(absl::StrCat("interface ", name, " exists and is a \"", l->kind,
                                                        "\" link, not a WireGuard device: not touching it"));
    }
  }
  bool kernel_can = false;
  if (opts_.wireguard != wireguard::BackendChoice::kUserspace && existing != wireguard::Backend::kKernel) {
    kernel_can = KernelMakesWireGuard(nl);
  }
  ASSIGN_OR_RETURN(const wireguard::BackendPlan plan, wireguard::PlanBackend(opts_.wireguard, existing, kernel_can));
  Log(plan.why);
  backend_ = plan.use;
  if (plan.remove_existing) {
    // wireguard-go exits when its device goes; a kernel device takes its peers with it.
    RETURN_IF_ERROR(net::DeleteLink(nl, name));
  }
  std::unique_ptr<wireguard::Device> dev;
  if (plan.use == wireguard::Backend::kKernel) {
    if (!plan.adopt) RETURN_IF_ERROR(net::CreateLink(nl, name, "wireguard"));
    ASSIGN_OR_RETURN(dev, wireguard::KernelDevice::Open(name));
  } else {
    dev = std::make_unique<wireguard::UapiDevice>(name);
  }
  if (auto st = dev->Get(); st.ok() && (plan.adopt || plan.use == wireguard::Backend::kUserspace)) {
    Log(absl::StrCat("adopting the running WireGuard device ", name, " (", st->peers.size(), " peers)"));
    *adopted = FromDevice(*st);
  } else if (plan.use == wireguard::Backend::kUserspace) {
    ASSIGN_OR_RETURN(auto proc, wireguard::WireGuardGo::Start(name, {}));
    wg_process_.emplace(std::move(proc));
  }
  return dev;
}

Agent::~Agent() {
  relay_supervisor_ = {};
  reconciler_.reset();  // waits for a reconcile under way
  // wireguard-go and the relay forwarder keep running (see Create): the next agent
  // adopts them.
  if (wg_process_) wg_process_->Detach();
}

void Agent::AskReconcile(uint32_t flags) { reconciler_->Ask(flags); }

Agent::Status Agent::GetStatus() {
  Status st;
  {
    absl::MutexLock l(&mu_);
    st.configured = configured_;
    st.nat = verdict_;
    st.peers = peers_->applied();
    st.version = version_;
    st.relay_tcp = relay_ && relay_->tcp();
    st.refused_peers = refused_.size();
  }
  st.reconciles = reconciler_->runs();
  st.controller_messages = controller_messages_.load();
  st.backend = backend_;
  absl::MutexLock l(&write_mu_);
  st.connected = stream_ != nullptr;
  return st;
}

void Agent::Run(std::stop_token stop) {
  std::jthread watch([this](std::stop_token st) { WatchPaths(st); });
  std::jthread nat([this](std::stop_token st) {
    nat::MonitorOptions mo{.port = opts_.wg_port, .targets = opts_.stun, .targets6 = opts_.stun6,
                           .interval = opts_.nat_interval};
    mo.probe_now = [this] { return probe_now_.exchange(false); };
    mo.resolve_targets = opts_.resolve_stun;
    // Where peers saw us, from the controller's Reprobes (a fresh flow mapped exactly
    // there is the collision, not randomization).
    mo.sightings = [this] {
      absl::MutexLock l(&mu_);
      return std::exchange(sightings_, {});
    };
    // The relays answer STUN too, and the WireGuard port never talks to them otherwise
    // (the relay forwarder has its own socket): fresh flows to probe the NAT with.
    mo.fresh_destinations = [this] {
      std::vector<net::Endpoint> out;
      absl::MutexLock l(&mu_);
      for (const auto& r : relays_) {
        if (auto e = api::EndpointOf(r.address()); e && e->ip.is_v4()) out.push_back(*e);
      }
      return out;
    };
    absl::Status s = nat::RunNatMonitor(
        mo,
        [this](const nat::PortProbeReport& r, const std::optional<nat::Verdict>&, bool changed) {
          OnNatReport(r, changed);
        },
        st);
    if (!s.ok()) Log(absl::StrCat("NAT monitor stopped: ", s.ToString()));
  });
  ServeController(stop);
}

}  // namespace weft::agent
