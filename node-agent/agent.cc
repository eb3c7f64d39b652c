#include "node-agent/agent.h"

#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/api/node_nat.h"
#include "lib/api/reconnect_backoff.h"
#include "lib/api/trailers.h"
#include "lib/nat/nat_monitor.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_addr.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_route.h"
#include "lib/net/uplink_mtu.h"
#include "lib/status/status_macros.h"
#include "lib/sys/steady_ms.h"
#include "lib/wireguard/uapi.h"
#include "absl/strings/escaping.h"
#include "node-agent/egress.h"
#include "node-agent/host_candidates.h"
#include "node-agent/peer_guard.h"
#include "node-agent/node_files.h"
#include "node-agent/snat_guard.h"

namespace weft::agent {
namespace {

// Whether the controller replica that ended the stream said it does not lead.
bool IsStandby(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(api::kControllerRoleTrailer);
  return it != trailers.end() && it->second == api::kStandby;
}

// Each line with the wall-clock time (UTC, ms): path events on two nodes line up.
void Log(const std::string& s) {
  const absl::Time now = absl::Now();
  std::fprintf(stderr, "weft-agent: %s %s\n", absl::FormatTime("%H:%M:%E3S", now, absl::UTCTimeZone()).c_str(),
               s.c_str());
}

constexpr int kPunchTtl = 2;
// rtm_protocol of the routes the agent makes ("ip route show proto 87"): unused by
// iproute2's rt_protos, so nothing else's routes look like ours.
constexpr uint8_t kRouteProtocol = 87;

using sys::SteadyMs;

// A peer node's tunnel address: the first address of its first IPv4 pod CIDR.
std::optional<net::IpAddress> TunnelAddress(const v1::NodeInfo& n) {
  for (const auto& c : n.pod_cidrs()) {
    auto p = net::IpPrefix::ParseNetwork(c);
    if (p.ok() && p->address.is_v4()) return p->First().Plus(1);
  }
  return std::nullopt;
}

// A Welcome's CIDRs (`what`: "pod", "cluster"), each a network other than /0.
absl::StatusOr<std::vector<net::IpPrefix>> WelcomeNetworks(const google::protobuf::RepeatedPtrField<std::string>& cidrs,
                                                           absl::string_view what) {
  std::vector<net::IpPrefix> out;
  for (const auto& c : cidrs) {
    auto p = net::IpPrefix::ParseNetwork(c);
    if (!p.ok() || p->length == 0) {
      return absl::InvalidArgumentError(absl::StrCat("Welcome refused: ", what, " CIDR \"",
                                                     absl::CHexEscape(c.substr(0, 64)), "\" is not a network"));
    }
    out.push_back(*p);
  }
  return out;
}

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
  auto dev = std::make_unique<wireguard::UapiDevice>(a->opts_.wg_interface);
  if (auto st = dev->Get(); st.ok()) {
    Log(absl::StrCat("adopting the running WireGuard device ", a->opts_.wg_interface, " (", st->peers.size(), " peers)"));
    a->applied_ = FromDevice(*st);
  } else {
    ASSIGN_OR_RETURN(auto proc, wireguard::WireGuardGo::Start(a->opts_.wg_interface, {}));
    a->wg_process_.emplace(std::move(proc));
  }
  a->device_ = std::move(dev);
  RETURN_IF_ERROR(a->device_->Set({.private_key = a->private_key_, .listen_port = a->opts_.wg_port}));
  ASSIGN_OR_RETURN(net::NlSocket nl, net::NlSocket::Open());
  ASSIGN_OR_RETURN(net::LinkInfo link, net::GetLink(nl, a->opts_.wg_interface));
  RETURN_IF_ERROR(net::SetLinkUp(nl, link.index));
  if (auto saved = ReadWholeFile(a->opts_.state_dir + "/pod_cidrs"); saved.ok()) {
    for (absl::string_view c : absl::StrSplit(*saved, '\n', absl::SkipWhitespace())) a->pod_cidrs_.emplace_back(c);
  }
  // The relay forwarder a previous agent left running: adopted while its relay answers
  // (the supervisor moves on if the controller no longer lists it); stopped otherwise.
  if (auto f = ForwarderClient::Connect(RelayForwarderSocket(a->opts_.state_dir)); f.ok()) {
    if ((*f)->state().allocated && (*f)->alive()) {
      Log(absl::StrCat("adopting the running relay forwarder (relay ", (*f)->server().ToString(),
                       (*f)->tcp() ? " (TCP)" : "", ", allocated ", (*f)->relayed().ToString(), ")"));
      a->relay_ = *std::move(f);
    } else if ((*f)->state().allocated) {  // an idle one (the chart's sidecar) is left as it is
      Log("stopping a relay forwarder whose relay no longer answers");
      (void)(*f)->Stop();
    }
  }
  Log(absl::StrCat("node ", a->opts_.node, ", WireGuard ", a->opts_.wg_interface, " on UDP ", a->opts_.wg_port,
                   ", public key ", a->public_key_.ToBase64()));
  return a;
}

Agent::~Agent() {
  relay_starter_ = {};
  relay_.reset();
  // wireguard-go and the relay forwarder keep running (see Create): the next agent
  // adopts them.
  if (wg_process_) wg_process_->Detach();
}

std::optional<v1::NodeInfo> Agent::SelfInfo() {
  // Before the NAT verdict the report carries none (peers add the key and routes, and
  // wait for the decision, which needs the verdict).
  if (pod_cidrs_.empty()) return std::nullopt;
  v1::NodeInfo n;
  n.set_name(opts_.node);
  n.set_wireguard_public_key(std::string(reinterpret_cast<const char*>(public_key_.bytes.data()), 32));
  for (const auto& c : pod_cidrs_) n.add_pod_cidrs(c);
  if (auto nl = net::NlSocket::Open(); nl.ok()) {
    auto wg = net::GetLink(*nl, opts_.wg_interface);
    int uplink = 0;  // the interface towards the STUN servers: its addresses first
    if (!opts_.stun.empty()) {
      if (auto r = net::GetRoute(*nl, opts_.stun.front().ip); r.ok()) uplink = r->ifindex;
    }
    if (auto addrs = net::ListAddresses(*nl, 0); addrs.ok()) {
      for (const auto& ip : HostCandidates(*addrs, uplink, wg.ok() ? wg->index : -1)) {
        auto* c = n.add_candidates();
        c->set_type(v1::CANDIDATE_TYPE_HOST);
        c->mutable_endpoint()->set_ip(ip.ToString());
        c->mutable_endpoint()->set_port(opts_.wg_port);
      }
    }
  }
  if (snat_.randomizing_rules_size() > 0 || snat_.mitigation_installed()) *n.mutable_snat() = snat_;
  if (relay_) {
    auto* c = n.add_candidates();
    c->set_type(v1::CANDIDATE_TYPE_RELAYED);
    c->mutable_endpoint()->set_ip(relay_->relayed().ip.ToString());
    c->mutable_endpoint()->set_port(relay_->relayed().port);
  }
  // The verdict and the reflexive endpoint go out only once this agent has planned from a
  // snapshot: peers that learn them send to us half a second later, and by then our NAT
  // must be open towards them (Reconcile punched), or a NAT that does not drop unsolicited
  // inbound UDP binds its public port to their first packet (seeds/004).
  if (verdict_ && synced_) {
    *n.mutable_nat() = api::NatReportOf(*verdict_);
    if (verdict_->reflexive) {
      auto* c = n.add_candidates();
      c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
      c->mutable_endpoint()->set_ip(verdict_->reflexive->ip.ToString());
      c->mutable_endpoint()->set_port(verdict_->reflexive->port);
    }
  }
  return n;
}

void Agent::SendSelf() {
  auto info = SelfInfo();
  if (!info) return;
  v1::AgentMessage m;
  *m.mutable_node() = *info;
  std::lock_guard<std::mutex> l(write_mu_);
  if (stream_ != nullptr) stream_->Write(m);
}

v1::SnatReport Agent::CheckSnat(const nat::Verdict& verdict) {
  std::vector<net::IpAddress> ips;
  if (auto nl = net::NlSocket::Open(); nl.ok()) {
    if (auto l = net::ListLocalIps(*nl); l.ok()) ips = *l;
  }
  const std::vector<nat::SnatRule> randomizing = nat::RandomizingRulesFor(ReadNodeSnatRules(), opts_.wg_port, ips);
  v1::SnatReport out;
  for (const auto& r : randomizing) out.add_randomizing_rules(DescribeRule(r));
  std::lock_guard<std::mutex> l(mu_);
  if (!opts_.snat_mitigation) {
    // Off (the default, or switched off): Weft's rule must not stay behind.
    if (snat_.mitigation_installed() || MitigationInstalled()) {
      if (absl::Status s = RemoveMitigation(); !s.ok()) Log(absl::StrCat("SNAT: removing the mitigation: ", s.ToString()));
    }
    return out;
  }
  if (!randomizing.empty() && !snat_.mitigation_installed()) {
    if (absl::Status s = InstallMitigation(opts_.wg_port); s.ok()) {
      *out.mutable_before_mitigation() = api::NatReportOf(verdict);
      probe_now_ = true;  // the verdict "after", at once
      Log(absl::StrCat("SNAT: ", randomizing.size(), " rule(s) randomize UDP ", opts_.wg_port, " (",
                       out.randomizing_rules(0), "); installed Weft's port-preserving rule; NAT before: ",
                       verdict.reason));
    } else {
      Log(absl::StrCat("SNAT: installing the mitigation: ", s.ToString()));
    }
  } else if (snat_.has_before_mitigation()) {
    *out.mutable_before_mitigation() = snat_.before_mitigation();
  }
  out.set_mitigation_installed(!randomizing.empty() && MitigationInstalled());
  return out;
}

std::optional<v1::HealthReport> Agent::HealthIfChanged() {
  auto dev = device_->Get();
  if (!dev.ok()) return std::nullopt;
  v1::HealthReport r;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& p : applied_) {
    auto* h = r.add_peers();
    h->set_peer(p.node);
    h->set_reason(p.reason);
    h->set_path_mtu(static_cast<uint32_t>(p.path_mtu));
    for (const auto& d : dev->peers) {
      if (d.public_key != p.config.public_key) continue;
      // The truth: where WireGuard sends now (it roams), not where we asked it to.
      switch (EndpointPath(d.endpoint)) {
        case nat::Path::kDirect: h->set_path(v1::PATH_KIND_DIRECT); break;
        case nat::Path::kRelay: h->set_path(relay_ && relay_->tcp() ? v1::PATH_KIND_RELAY_TCP : v1::PATH_KIND_RELAY); break;
        case nat::Path::kNone: break;
      }
      if (d.endpoint) {
        h->mutable_endpoint()->set_ip(d.endpoint->ip.ToString());
        h->mutable_endpoint()->set_port(d.endpoint->port);
      }
      if (d.last_handshake.time_since_epoch().count() != 0) {
        h->set_last_handshake_unix_ms(
            std::chrono::duration_cast<std::chrono::milliseconds>(d.last_handshake.time_since_epoch()).count());
      }
    }
  }
  if (r.SerializeAsString() == last_health_.SerializeAsString()) return std::nullopt;
  last_health_ = r;
  return r;
}

void Agent::StartRelay() {
  if (relays_.empty() || relay_starter_.joinable()) return;
  // The relay supervisor: allocates on a relay (starting at one picked by the node's
  // name, which spreads nodes over the relays), and when that relay stops answering or
  // leaves the controller's list, moves to the next; peers follow the new RELAYED
  // candidate. The list is read afresh each round (RelayList replaces it).
  relay_starter_ = std::jthread([this](std::stop_token st) {
    std::optional<size_t> next;  // after a failure, the relay after the one that failed
    auto sleep = [&](int ms) {
      for (int i = 0; i < ms / 50 && !st.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    };
    while (!st.stop_requested()) {
      std::vector<v1::RelayServer> relays;
      {
        std::unique_lock<std::mutex> l(mu_);
        const bool listed = relay_ && RelayListed(relay_->server());
        if (relay_ && listed) {
          // Only this thread replaces relay_: asked outside the lock.
          l.unlock();
          const bool alive = relay_->alive();
          if (alive) {
            sleep(200);
            continue;
          }
          l.lock();
        }
        if (relay_) {
          Log(absl::StrCat("relay ", relay_->server().ToString(),
                           listed ? " stopped answering: moving on" : " is no longer listed: moving on"));
          std::unique_ptr<ForwarderClient> dead = std::move(relay_);
          SendSelf();  // no RELAYED candidate until the next allocation
          l.unlock();
          (void)dead->Stop();  // releases the allocation; the forwarder exits
          dead.reset();
          l.lock();
        }
        relays = relays_;
      }
      if (relays.empty()) {
        sleep(200);
        continue;
      }
      size_t first = next.value_or(std::hash<std::string>{}(opts_.node)) % relays.size();
      bool allocated = false;
      for (size_t k = 0; k < relays.size() && !allocated && !st.stop_requested(); ++k) {
        const auto& r = relays[(first + k) % relays.size()];
        auto ip = net::IpAddress::Parse(r.address().ip());
        if (!ip.ok()) continue;
        bool tcp = false;  // UDP blocked: TURN over TCP (the relays listen on TCP on the same port)
        {
          std::lock_guard<std::mutex> l(mu_);
          tcp = verdict_ && verdict_->udp_blocked;
        }
        RelayClient::Options ro{.server = {*ip, static_cast<uint16_t>(r.address().port())},
                                .username = r.username(), .password = r.password(), .wg_port = opts_.wg_port,
                                .tcp = tcp};
        const std::string socket = RelayForwarderSocket(opts_.state_dir);
        const ForwarderClient::LaunchOptions launch{.launch = !opts_.relay_forwarder_sidecar};
        auto c = ForwarderClient::Allocate(socket, ro, launch);
        if (!c.ok() && !tcp && absl::IsDeadlineExceeded(c.status())) {
          ro.tcp = tcp = true;  // no UDP answer (the verdict may not say so yet): try the stream
          c = ForwarderClient::Allocate(socket, ro, launch);
        }
        if (!c.ok()) {
          Log(absl::StrCat("relay ", r.address().ip(), ":", r.address().port(), ": ", c.status().ToString()));
          continue;
        }
        next = (first + k + 1) % relays.size();
        std::lock_guard<std::mutex> l(mu_);
        relay_ = *std::move(c);
        Log(absl::StrCat("relay ", relay_->server().ToString(), tcp ? " (TCP)" : "", ": allocated ",
                         relay_->relayed().ToString()));
        SendSelf();
        if (absl::Status s = Reconcile(); !s.ok()) Log(absl::StrCat("applying the relay: ", s.ToString()));
        allocated = true;
      }
      if (!allocated) sleep(2000);
    }
  });
}

bool Agent::RelayListed(const net::Endpoint& server) const {
  for (const auto& r : relays_) {
    if (r.address().ip() == server.ip.ToString() && r.address().port() == server.port) return true;
  }
  return false;
}

void Agent::SetRelays(const google::protobuf::RepeatedPtrField<v1::RelayServer>& relays) {
  relays_.assign(relays.begin(), relays.end());
  StartRelay();
}

absl::Status Agent::OnWelcome(const v1::Welcome& w) {
  // Typed before anything is used: each CIDR a network, a few of them; what does not
  // parse refuses the whole Welcome (nothing of it is applied).
  if (w.pod_cidrs_size() == 0 || w.pod_cidrs_size() > 4 || w.cluster_cidrs_size() == 0 || w.cluster_cidrs_size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat("Welcome refused: ", w.pod_cidrs_size(), " pod CIDRs and ",
                                                   w.cluster_cidrs_size(), " cluster CIDRs (1-4 and 1-16 expected)"));
  }
  ASSIGN_OR_RETURN(const std::vector<net::IpPrefix> own, WelcomeNetworks(w.pod_cidrs(), "pod"));
  ASSIGN_OR_RETURN(const std::vector<net::IpPrefix> cluster, WelcomeNetworks(w.cluster_cidrs(), "cluster"));
  ASSIGN_OR_RETURN(const std::string egress, EgressRuleset(own, cluster, opts_.wg_interface));
  epoch_ = w.epoch();
  SetRelays(w.relays());
  pod_cidrs_.clear();
  for (const auto& p : own) pod_cidrs_.push_back(p.ToString());
  own_cidrs_ = own;
  cluster_cidrs_ = cluster;
  RETURN_IF_ERROR(WriteFileAtomically(opts_.state_dir + "/pod_cidrs", absl::StrJoin(pod_cidrs_, "\n") + "\n", 0600));
  // The device carries the node's own address in each pod CIDR (IPAM never gives it to
  // a pod), so traffic from the node to remote pods has an address they can answer.
  ASSIGN_OR_RETURN(net::NlSocket nl, net::NlSocket::Open());
  ASSIGN_OR_RETURN(net::LinkInfo link, net::GetLink(nl, opts_.wg_interface));
  for (const auto& p : own) {
    const net::IpAddress node_ip = p.First().Plus(1);
    absl::Status s = net::AddAddress(nl, link.index, {node_ip, node_ip.bit_length()}, {.no_dad = true});
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  }
  if (absl::Status s = ApplyEgress(egress); !s.ok()) {
    Log(absl::StrCat("egress masquerade not installed: ", s.message()));
  }
  const int mtu = TunnelMtu(nl);
  tunnel_mtu_ = mtu;
  if (link.mtu != mtu) {
    if (absl::Status s = net::SetLinkMtu(nl, link.index, mtu); !s.ok()) Log(absl::StrCat("WireGuard MTU: ", s.message()));
  }
  mkdir(opts_.cni_conf_dir.c_str(), 0755);
  RETURN_IF_ERROR(WriteFileAtomically(opts_.cni_conf_dir + "/10-weft.conflist",
                                      CniConflist(pod_cidrs_, mtu, opts_.cni_data_dir), 0644));
  configured_ = true;
  Log(absl::StrCat("pod CIDRs ", absl::StrJoin(pod_cidrs_, ", "), "; CNI config written"));
  return absl::OkStatus();
}

int Agent::TunnelMtu(net::NlSocket& nl) {
  if (opts_.pod_mtu > 0) return opts_.pod_mtu;
  // Auto: the uplink towards where WireGuard's packets go (the STUN servers stand in for
  // the peers; the controller too), less WireGuard's overhead. Only what is given as an
  // address: resolving names here would hold mu_ across DNS, which on a fresh cluster is
  // not up yet; without an address the default route's device stands in.
  std::vector<net::IpAddress> to;
  for (const auto& e : opts_.stun) to.push_back(e.ip);
  if (auto c = net::Endpoint::Parse(opts_.controller); c.ok()) to.push_back(c->ip);
  auto uplink = net::UplinkMtu(nl, to);
  if (!uplink.ok()) {
    Log(absl::StrCat("uplink MTU unknown (", uplink.status().message(), "): assuming 1500"));
    return net::TunnelMtu(1500);
  }
  const int mtu = net::TunnelMtu(*uplink);
  Log(absl::StrCat("uplink MTU ", *uplink, ": WireGuard and pod MTU ", mtu));
  return mtu;
}

absl::Status Agent::Reconcile() {
  // Before the first snapshot this agent knows no node: planning now would empty the
  // device it adopted (the NAT verdict can come before the controller answers).
  if (!synced_) return absl::OkStatus();
  // What deciding a pair locally needs of this node: its name and NAT verdict (not the
  // full report, whose host candidates cost a netlink dump per message).
  std::optional<v1::NodeInfo> self;
  if (verdict_) {
    self.emplace();
    self->set_name(opts_.node);
    *self->mutable_nat() = api::NatReportOf(*verdict_);
  }
  // Each peer's local relay proxy, looked up once: a channel to every peer that has a
  // relayed address, whatever the pair's path, so that when a direct path dies and one
  // side falls back, the other receives through the relay at once (WireGuard follows the
  // packets' source).
  std::map<std::string, net::Endpoint> proxies;
  if (relay_) {
    for (const auto& [name, n] : nodes_) {
      if (name == opts_.node) continue;
      for (const auto& c : n.candidates()) {
        if (c.type() != v1::CANDIDATE_TYPE_RELAYED) continue;
        auto ip = net::IpAddress::Parse(c.endpoint().ip());
        if (!ip.ok()) continue;
        if (auto proxy = relay_->ProxyFor({*ip, static_cast<uint16_t>(c.endpoint().port())}); proxy.ok()) {
          proxies[name] = *proxy;
          break;
        }
      }
    }
  }
  auto via_relay = [&proxies](const v1::NodeInfo& peer) -> std::optional<net::Endpoint> {
    auto it = proxies.find(peer.name());
    if (it == proxies.end()) return std::nullopt;
    return it->second;
  };
  std::vector<PlannedPeer> desired = PlanPeers(opts_.node, nodes_, directives_, self ? &*self : nullptr, applied_, via_relay);
  // Each decided pair's path state machine has the last word: it may keep a pair on the
  // relay (the direct path stopped answering; punching before a move) or follow the peer.
  const int64_t now = SteadyMs();
  std::set<std::string> seen;
  for (auto& p : desired) {
    if (auto m = mtus_.find(p.node); m != mtus_.end()) p.path_mtu = m->second.search.mtu();
    if (!p.decision) continue;
    seen.insert(p.node);
    auto [it, fresh] = paths_.try_emplace(p.node);
    nat::PeerPath& pp = it->second;
    auto proxy = proxies.find(p.node);
    pp.SetRelay(proxy != proxies.end() ? std::optional<net::Endpoint>(proxy->second) : std::nullopt, now);
    nat::PairDecision decision = *p.decision;
    if (fresh) {
      // A peer this agent adopted with the device, already sending direct: its NATs are
      // open and WireGuard has a session, so there is nothing to open (a restarted agent
      // must not pause a working pair).
      for (const auto& cur : applied_) {
        if (cur.config.public_key == p.config.public_key && EndpointPath(cur.config.endpoint) == nat::Path::kDirect) {
          decision.punch.clear();
        }
      }
    }
    Punch(pp.Decide(decision, now));
    p.path = std::string(nat::PathName(pp.path()));
    p.config.endpoint = pp.endpoint();
    p.reason = pp.reason();
    // Opening (nothing sent yet): the peer is in the device without an endpoint, so the
    // peer's first handshake (it may finish opening first) is answered rather than dropped,
    // and without a keepalive: WireGuard sends one at once when the interval is set (0 →
    // 25 s), and one without an endpoint would fail and hold back the next handshake for
    // 5 s (REKEY_TIMEOUT); set with the endpoint, it is the pair's first packet.
    if (pp.state() == nat::PeerPath::State::kOpening) p.config.persistent_keepalive = 0;
  }
  std::erase_if(paths_, [&](const auto& kv) { return !seen.contains(kv.first); });
  std::erase_if(mtus_, [&](const auto& kv) {
    return std::none_of(desired.begin(), desired.end(), [&](const PlannedPeer& p) { return p.node == kv.first; });
  });
  wireguard::DeviceConfig diff = DiffPeers(applied_, desired);
  if (!diff.peers.empty()) RETURN_IF_ERROR(device_->Set(diff));
  for (const auto& p : desired) {
    const PlannedPeer* old = nullptr;
    for (const auto& a : applied_) {
      if (a.node == p.node) old = &a;
    }
    if (old == nullptr || old->path != p.path || old->reason != p.reason) {
      Log(absl::StrCat("peer ", p.node, ": ", p.path, " (", p.reason, ")"));
    }
    if (old != nullptr && old->path_mtu != p.path_mtu && p.path_mtu > 0) {
      Log(absl::StrCat("peer ", p.node, ": path MTU ", mtus_.at(p.node).search.reason()));
    }
  }
  applied_ = desired;
  ASSIGN_OR_RETURN(net::NlSocket nl, net::NlSocket::Open());
  ASSIGN_OR_RETURN(net::LinkInfo link, net::GetLink(nl, opts_.wg_interface));
  // Each peer's pod CIDRs carry its path MTU when it is below the device's: the node
  // tells its own pods with local ICMP (which nothing filters) and clamps their SYNs.
  // Routes carry Weft's protocol marker, and the agent replaces only routes it made:
  // one into its own device, or with its marker. Anyone else's route to the same prefix
  // stays, and the peer is not routed there (logged once).
  std::map<std::string, int> want;
  std::set<std::string> foreign;
  std::optional<std::vector<net::Route>> table;  // read once, if some route was there already
  for (const auto& p : desired) {
    const int mtu = p.path_mtu > 0 && p.path_mtu < link.mtu ? p.path_mtu : 0;
    for (const auto& r : p.routes) {
      const std::string key = r.ToString();
      const net::Route route{.dst = r, .ifindex = link.index, .scope = RT_SCOPE_LINK, .protocol = kRouteProtocol,
                             .mtu = mtu};
      auto cur = routes_.find(key);
      if (cur != routes_.end() && cur->second == mtu) {
        want[key] = mtu;
        continue;
      }
      absl::Status added = net::AddRoute(nl, route, /*replace=*/cur != routes_.end());
      if (absl::IsAlreadyExists(added)) {
        if (!table) {
          ASSIGN_OR_RETURN(std::vector<net::Route> listed, net::ListRoutes(nl, r.family()));
          table = std::move(listed);
        }
        // Ours only if seen as ours: an unreachable or blackhole route is not listed.
        bool ours = false;
        for (const auto& t : *table) {
          if (t.dst == r && (t.protocol == kRouteProtocol || t.ifindex == link.index)) ours = true;
          if (t.dst == r && t.protocol != kRouteProtocol && t.ifindex != link.index) {
            ours = false;
            break;
          }
        }
        if (!ours) {
          foreign.insert(key);
          if (!foreign_routes_.contains(key)) {
            Log(absl::StrCat("peer ", p.node, ": not routing ", key, ": the node has a route there that Weft did not make"));
          }
          continue;
        }
        added = net::AddRoute(nl, route, /*replace=*/true);
      }
      RETURN_IF_ERROR(added);
      want[key] = mtu;
    }
  }
  foreign_routes_ = std::move(foreign);
  for (const auto& [r, mtu] : routes_) {
    if (want.count(r)) continue;
    if (auto p = net::IpPrefix::Parse(r); p.ok()) {
      // Protocol unset: matches ours and an older agent's (both into our device only).
      (void)net::DeleteRoute(nl, {.dst = *p, .ifindex = link.index, .scope = RT_SCOPE_LINK, .protocol = 0});
    }
  }
  routes_ = std::move(want);
  return absl::OkStatus();
}

void Agent::GuardNodes() {
  GuardedPeers g = GuardPeers(opts_.node, own_cidrs_, std::string(reinterpret_cast<const char*>(public_key_.bytes.data()), 32),
                              cluster_cidrs_, claimed_);
  for (const auto& [node, why] : g.refused) {
    if (auto it = refused_.find(node); it == refused_.end() || it->second != why) {
      Log(absl::StrCat("peer ", node, ": refused what the controller said of it: ", why));
    }
  }
  for (const auto& [node, why] : refused_) {
    if (!g.refused.contains(node)) Log(absl::StrCat("peer ", node, ": accepted again"));
  }
  refused_ = std::move(g.refused);
  nodes_ = std::move(g.nodes);
}

void Agent::OnMessage(const v1::ControllerMessage& m) {
  std::lock_guard<std::mutex> l(mu_);
  absl::Status s;
  switch (m.msg_case()) {
    case v1::ControllerMessage::kWelcome:
      s = OnWelcome(m.welcome());
      if (s.ok()) SendSelf();
      break;
    case v1::ControllerMessage::kRelays:
      Log(absl::StrCat("relays from the controller: ", m.relays().relays_size()));
      SetRelays(m.relays().relays());
      break;
    case v1::ControllerMessage::kSnapshot:
      synced_ = true;
      claimed_.clear();
      for (const auto& n : m.snapshot().nodes()) claimed_[n.name()] = n;
      GuardNodes();
      version_ = m.snapshot().version();
      s = Reconcile();
      SendSelf();  // the verdict, now that our NAT is open towards every peer we know
      break;
    case v1::ControllerMessage::kDelta:
      for (const auto& n : m.delta().upserted()) claimed_[n.name()] = n;
      for (const auto& r : m.delta().removed()) {
        claimed_.erase(r);
        directives_.erase(r);
      }
      GuardNodes();
      version_ = m.delta().version();
      s = Reconcile();
      break;
    case v1::ControllerMessage::kDirective:
      // The pair's path state machine sees the new decision in Reconcile: a changed one
      // ends a fall-back, and a relayed pair decided direct punches before it moves.
      directives_[m.directive().peer()] = m.directive();
      s = Reconcile();
      break;
    case v1::ControllerMessage::kReprobe:
      // A peer sees us at another port than STUN did: our NAT may map new flows per
      // destination now (keeping the old flows), or it bound our port to a peer's packet.
      // A probe on a fresh flow tells which, at once rather than at the next round.
      if (reprobe_rate_.Take(SteadyMs())) {
        Log(absl::StrCat("controller: ", absl::CHexEscape(m.reprobe().reason().substr(0, 200)),
                         "; probing a fresh flow"));
        if (auto seen = api::EndpointOf(m.reprobe().seen()); seen && sightings_.size() < 16) {
          sightings_.push_back(*seen);
        }
        probe_now_ = true;
      }
      break;
    default:
      break;
  }
  if (!s.ok()) Log(absl::StrCat("applying controller state: ", s.ToString()));
}

Agent::Status Agent::GetStatus() {
  Status st;
  {
    std::lock_guard<std::mutex> l(mu_);
    st.configured = configured_;
    st.nat = verdict_;
    st.peers = applied_;
    st.version = version_;
    st.relay_tcp = relay_ && relay_->tcp();
    st.refused_peers = refused_.size();
  }
  std::lock_guard<std::mutex> l(write_mu_);
  st.connected = stream_ != nullptr;
  return st;
}

grpc::Status Agent::Session(v1::EndpointService::Stub& stub, std::stop_token stop, bool* standby) {
  *standby = false;
  grpc::ClientContext ctx;
  std::stop_callback cancel(stop, [&] { ctx.TryCancel(); });
  std::unique_ptr<Stream> stream = stub.Connect(&ctx);
  v1::AgentMessage hello;
  {
    std::lock_guard<std::mutex> l(mu_);
    hello.mutable_hello()->set_node(opts_.node);
    std::string token = opts_.join_token;
    if (!opts_.token_file.empty()) {
      auto t = ReadWholeFile(opts_.token_file);
      if (!t.ok()) {
        Log(absl::StrCat("reading the ServiceAccount token: ", t.status().ToString()));
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no token");
      }
      token = std::string(absl::StripAsciiWhitespace(*t));
    }
    hello.mutable_hello()->set_token(token);
    hello.mutable_hello()->set_resume_version(version_);
    hello.mutable_hello()->set_resume_epoch(epoch_);
    last_health_.Clear();  // a new stream (maybe a new leader) gets a full report
    for (const auto& c : pod_cidrs_) hello.mutable_hello()->add_pod_cidrs(c);
  }
  {
    std::lock_guard<std::mutex> l(write_mu_);
    if (!stream->Write(hello)) {
      grpc::Status s = stream->Finish();
      *standby = IsStandby(ctx);
      return s;
    }
    stream_ = stream.get();
  }
  // Health reports go out on their own thread, at most one per interval, when changed.
  // A peer's endpoint that moved goes out at once (at most one such report a second): a
  // peer seen at another port may be the first sign that its NAT changed (Reprobe).
  std::jthread health([&](std::stop_token st) {
    int64_t urgent_at = 0;
    while (!st.stop_requested()) {
      const int64_t due = SteadyMs() + opts_.health_interval.count();
      while (!st.stop_requested() && SteadyMs() < due) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (SteadyMs() - urgent_at >= 1000 && health_now_.exchange(false)) {
          urgent_at = SteadyMs();
          break;
        }
      }
      if (st.stop_requested()) break;
      if (auto h = HealthIfChanged()) {
        v1::AgentMessage msg;
        *msg.mutable_health() = *std::move(h);
        std::lock_guard<std::mutex> l(write_mu_);
        if (stream_ != nullptr) stream_->Write(msg);
      }
    }
  });
  v1::ControllerMessage m;
  while (stream->Read(&m)) OnMessage(m);
  health.request_stop();
  health.join();
  {
    std::lock_guard<std::mutex> l(write_mu_);
    stream_ = nullptr;
  }
  grpc::Status s = stream->Finish();
  *standby = IsStandby(ctx);
  if (!stop.stop_requested()) Log(absl::StrCat("controller stream ended: ", s.error_message(), " (code ", s.error_code(), ")"));
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT && s.error_message().find("resume version") != std::string::npos) {
    // A controller that lost its history: start over with a snapshot.
    std::lock_guard<std::mutex> l(mu_);
    version_ = 0;
  }
  return s;
}

void Agent::TakeProbeAnswers(int64_t now) {
  if (!probe_) return;
  for (const net::EchoReply& r : probe_->Drain()) {
    auto it = probing_.find(r.seq);
    if (it == probing_.end()) continue;
    auto n = nodes_.find(it->second);
    // Only the peer's own tunnel address answers for the peer.
    if (n != nodes_.end() && TunnelAddress(n->second) == r.from) {
      if (auto pp = paths_.find(it->second); pp != paths_.end()) pp->second.ProbeAnswered(now);
    }
    probing_.erase(it);
  }
}

const std::string* Agent::NodeByTunnelAddress(const net::IpAddress& ip) const {
  for (const auto& [name, n] : nodes_) {
    if (name != opts_.node && TunnelAddress(n) == ip) return &name;
  }
  return nullptr;
}

void Agent::TakeMtuAcks(int64_t now) {
  if (!mtu_prober_) return;
  // Only peer nodes' tunnel addresses are answered or heard: the socket is bound to the
  // device, so what arrives came through WireGuard from the holder of that peer's key.
  auto acks = mtu_prober_->Serve([this](const net::IpAddress& ip) { return NodeByTunnelAddress(ip) != nullptr; });
  for (const MtuProber::Ack& a : acks) {
    const std::string* node = NodeByTunnelAddress(a.from);
    if (node == nullptr) continue;
    if (auto m = mtus_.find(*node); m != mtus_.end()) m->second.search.Answered(a.size, now);
  }
}

bool Agent::WatchMtu(const PlannedPeer& p, const wireguard::PeerStatus& d, int64_t now) {
  if (opts_.mtu_probe_port == 0 || tunnel_mtu_ <= 0 || !d.endpoint) return false;
  auto n = nodes_.find(p.node);
  auto to = n != nodes_.end() ? TunnelAddress(n->second) : std::nullopt;
  if (!to) return false;
  if (!mtu_prober_) {
    auto m = MtuProber::Open(opts_.wg_interface, opts_.mtu_probe_port);
    if (!m.ok()) {
      if (m.status().ToString() != mtu_prober_error_) Log(absl::StrCat("path MTU probes: ", m.status().ToString()));
      mtu_prober_error_ = m.status().ToString();
      return false;
    }
    mtu_prober_.emplace(*std::move(m));
  }
  auto [it, fresh] = mtus_.try_emplace(p.node, PeerMtu{nat::PathMtu(tunnel_mtu_), ""});
  nat::PathMtu& search = it->second.search;
  search.SetCeiling(tunnel_mtu_, now);
  // Another endpoint or class is another path, with an MTU of its own.
  const std::string path = TruePathName(EndpointPath(d.endpoint), relay_ && relay_->tcp()) + " " + d.endpoint->ToString();
  if (path != it->second.path) {
    it->second.path = path;
    search.PathChanged(now);
  }
  search.Observe(d.tx_bytes, d.rx_bytes, now);
  if (auto size = search.Tick(now)) {
    absl::Status s = mtu_prober_->Send(*to, mtu_seq_++, *size);
    if (absl::IsOutOfRange(s)) search.SendFailed(*size, now);
  }
  return search.mtu() != p.path_mtu;
}

void Agent::Punch(const std::vector<net::Endpoint>& to) {
  if (to.empty()) return;
  absl::Status s = absl::OkStatus();
  if (!punch_) {
    if (auto p = stun::SharedPortStun::Open(opts_.wg_port); p.ok()) {
      punch_.emplace(*std::move(p));
    } else {
      s = p.status();
    }
  }
  // A punch is a STUN Binding request from the WireGuard port with a TTL of 2: it opens our
  // NAT (the first hop) towards the peer and dies at the next router, before it can reach
  // the peer's NAT and make it bind its public port to us (seeds/004).
  for (const auto& e : to) {
    if (s.ok()) s = punch_->Send(stun::BuildBindingRequest(stun::TxId{}), e, kPunchTtl);
  }
  if (!s.ok() && s.ToString() != punch_error_) Log(absl::StrCat("punching: ", s.ToString()));
  punch_error_ = s.ok() ? "" : s.ToString();
}

void Agent::WatchPaths(std::stop_token stop) {
  while (!stop.stop_requested()) {
    // A tick every 250 ms; probe answers are taken as they arrive.
    const int64_t tick_end = SteadyMs() + 250;
    for (int64_t left = 250; left > 0 && !stop.stop_requested(); left = tick_end - SteadyMs()) {
      pollfd pfd[2] = {{-1, POLLIN, 0}, {-1, POLLIN, 0}};
      {
        std::lock_guard<std::mutex> l(mu_);
        if (probe_) pfd[0].fd = probe_->fd();
        if (mtu_prober_) pfd[1].fd = mtu_prober_->fd();
      }
      if (pfd[0].fd < 0 && pfd[1].fd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(left, 50)));
        continue;
      }
      if (poll(pfd, 2, static_cast<int>(std::min<int64_t>(left, 50))) > 0) {
        std::lock_guard<std::mutex> l(mu_);
        TakeProbeAnswers(SteadyMs());
        TakeMtuAcks(SteadyMs());
      }
    }
    // Without a relay there is nothing to fall back to or move from: the path machines only
    // need the time (opening). The device is asked every tick all the same for the path
    // MTU searches (counters, and the endpoint each is for), unless discovery is off.
    bool sample_paths = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      sample_paths = relay_ != nullptr;
    }
    absl::StatusOr<wireguard::DeviceStatus> dev = wireguard::DeviceStatus{};
    if (sample_paths || opts_.mtu_probe_port != 0) dev = device_->Get();
    if (!dev.ok()) continue;
    const int64_t now = SteadyMs();
    const auto wall_now = std::chrono::system_clock::now();
    std::lock_guard<std::mutex> l(mu_);
    bool reconcile = false;
    wireguard::DeviceConfig reassert;
    for (const auto& p : applied_) {
      // WireGuard's view of the peer, for its MTU search and its path machine.
      const wireguard::PeerStatus* d = nullptr;
      for (const auto& s : dev->peers) {
        if (s.public_key == p.config.public_key) d = &s;
      }
      if (d != nullptr) {
        reconcile |= WatchMtu(p, *d, now);
        auto [seen, added] = seen_endpoints_.try_emplace(p.node, d->endpoint);
        // Moved since the last tick, or (a new peer) already elsewhere than we set.
        if (added ? d->endpoint != p.config.endpoint : seen->second != d->endpoint) {
          seen->second = d->endpoint;
          health_now_ = true;
        }
      }
      auto pp = paths_.find(p.node);
      if (pp == paths_.end()) continue;
      if (sample_paths && d != nullptr) {
        nat::PeerSample sample{.rx_bytes = d->rx_bytes, .tx_bytes = d->tx_bytes, .endpoint_path = EndpointPath(d->endpoint)};
        if (d->last_handshake.time_since_epoch().count() != 0) {
          sample.last_handshake_ms =
              now - std::chrono::duration_cast<std::chrono::milliseconds>(wall_now - d->last_handshake).count();
        }
        pp->second.Observe(sample, now);
      }
      const nat::PeerPath::Actions a = pp->second.Tick(now);
      reconcile |= a.reconfigure;
      if (a.set_endpoint && p.config.endpoint) reassert.peers.push_back(p.config);
      if (a.probe) {
        auto n = nodes_.find(p.node);
        auto to = n != nodes_.end() ? TunnelAddress(n->second) : std::nullopt;
        if (!probe_) {
          if (auto t = TunnelProbe::Open(opts_.wg_interface); t.ok()) {
            probe_.emplace(*std::move(t));
          } else {
            Log(absl::StrCat("path probes: ", t.status().ToString()));
          }
        }
        if (probe_ && to) {
          probing_.erase(static_cast<uint16_t>(probe_seq_ - 1024));  // answers that never came
          probing_[probe_seq_] = p.node;
          (void)probe_->Send(*to, probe_seq_++);
        }
      }
      Punch(a.punch);
    }
    if (seen_endpoints_.size() > applied_.size()) {  // peers that went
      std::set<std::string> live;
      for (const auto& p : applied_) live.insert(p.node);
      std::erase_if(seen_endpoints_, [&](const auto& kv) { return !live.contains(kv.first); });
    }
    if (!reassert.peers.empty()) {
      if (absl::Status s = device_->Set(reassert); !s.ok()) Log(absl::StrCat("endpoint: ", s.ToString()));
    }
    if (reconcile) {
      if (absl::Status s = Reconcile(); !s.ok()) Log(absl::StrCat("applying a path change: ", s.ToString()));
    }
  }
}

void Agent::Run(std::stop_token stop) {
  std::jthread watch([this](std::stop_token st) { WatchPaths(st); });
  std::jthread nat([this](std::stop_token st) {
    nat::MonitorOptions mo{.port = opts_.wg_port, .targets = opts_.stun, .interval = opts_.nat_interval};
    mo.probe_now = [this] { return probe_now_.exchange(false); };
    mo.resolve_targets = opts_.resolve_stun;
    // Where peers saw us, from the controller's Reprobes (a fresh flow mapped exactly
    // there is the collision, not randomization).
    mo.sightings = [this] {
      std::lock_guard<std::mutex> l(mu_);
      return std::exchange(sightings_, {});
    };
    // The relays answer STUN too, and the WireGuard port never talks to them otherwise
    // (the relay forwarder has its own socket): fresh flows to probe the NAT with.
    mo.fresh_destinations = [this] {
      std::vector<net::Endpoint> out;
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& r : relays_) {
        if (auto e = api::EndpointOf(r.address()); e && e->ip.is_v4()) out.push_back(*e);
      }
      return out;
    };
    absl::Status s = nat::RunNatMonitor(
        mo,
        [this](const nat::PortProbeReport& r, const std::optional<nat::Verdict>&, bool changed) {
          v1::SnatReport snat = CheckSnat(r.verdict);  // runs nft/iptables: not under mu_
          std::unique_lock<std::mutex> l(mu_);
          verdict_ = r.verdict;
          const bool snat_changed = snat.SerializeAsString() != snat_.SerializeAsString();
          snat_ = std::move(snat);
          if (changed) Log(absl::StrCat("NAT: ", r.verdict.reason));
          if (!changed && !snat_changed) return;
          // Pairs without the controller's word are decided from the new verdict, and
          // this side sends first where it initiates: its NAT is open towards those peers
          // before they hear of the change (the report goes out a moment later), so
          // their first packets are not dropped by it.
          size_t sending = 0;
          for (const auto& p : applied_) sending += p.config.endpoint.has_value();
          if (absl::Status s = Reconcile(); !s.ok()) Log(absl::StrCat("applying the NAT verdict: ", s.ToString()));
          size_t now_sending = 0;
          for (const auto& p : applied_) now_sending += p.config.endpoint.has_value();
          if (now_sending > sending) {
            l.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            l.lock();
          }
          SendSelf();
        },
        st);
    if (!s.ok()) Log(absl::StrCat("NAT monitor stopped: ", s.ToString()));
  });
  // The CA is read again before every connection: in Kubernetes it is a mounted
  // ConfigMap that may appear (or change) after the agent starts.
  std::string ca_loaded;
  std::unique_ptr<v1::EndpointService::Stub> stub;
  // Every attempt after a failed session uses a new channel, and so a new TCP connection:
  // behind a Service each connection may reach another replica, and one that reached a
  // standby (or a leader that lost its Lease) must not be reused. A channel of its own
  // subchannel pool really closes its connection when dropped; its own reconnect backoff
  // is kept short so that a controller that comes back is found within a second.
  auto new_channel = [this](const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    return v1::EndpointService::NewStub(grpc::CreateCustomChannel(opts_.controller, creds, args));
  };
  auto ensure_stub = [&](bool fresh) -> bool {
    if (opts_.insecure) {
      if (!stub || fresh) stub = new_channel(grpc::InsecureChannelCredentials());
      return true;
    }
    auto ca = ReadWholeFile(opts_.ca_file);
    if (!ca.ok() || ca->empty()) {
      Log(absl::StrCat("waiting for the controller's CA in ", opts_.ca_file));
      return false;
    }
    if (!stub || fresh || *ca != ca_loaded) {
      grpc::SslCredentialsOptions o;
      o.pem_root_certs = *ca;
      stub = new_channel(grpc::SslCredentials(o));
      ca_loaded = *ca;
    }
    return true;
  };
  std::mt19937 jitter(std::random_device{}());
  api::ReconnectBackoff backoff;
  bool fresh = false;
  while (!stop.stop_requested()) {
    const auto started = std::chrono::steady_clock::now();
    grpc::Status s(grpc::StatusCode::UNAVAILABLE, "no CA yet");
    bool standby = false;
    if (ensure_stub(fresh)) s = Session(*stub, stop, &standby);
    fresh = true;
    const auto wait = backoff.Next(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started), standby,
        static_cast<uint32_t>(jitter()));
    // Bounded, interruptible wait before reconnecting; the data plane is untouched.
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !stop.stop_requested();
         waited += std::chrono::milliseconds(20)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace weft::agent
