// What the agent says of its node: the report (NodeInfo: key, pod CIDRs, candidates, NAT
// verdict, SNAT findings), the data plane's health per peer, and the NAT monitor's runs.
#include "absl/strings/str_cat.h"
#include "lib/api/node_nat.h"
#include "lib/nat/nat_monitor.h"
#include "lib/net/rtnl_addr.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_route.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"
#include "node-agent/host_candidates.h"
#include "node-agent/snat_guard.h"

namespace weft::agent {

std::vector<net::IpAddress> Agent::HostAddresses() {
  std::vector<net::IpAddress> hosts;
  if (auto nl = net::NlSocket::Open(); nl.ok()) {
    auto wg = net::GetLink(*nl, opts_.wg_interface);
    int uplink = 0;  // the interface towards the STUN servers: its addresses first
    for (const auto* list : {&opts_.stun, &opts_.stun6}) {  // IPv6's for an IPv6-only node
      if (uplink != 0 || list->empty()) continue;
      if (auto r = net::GetRoute(*nl, list->front().ip); r.ok()) uplink = r->ifindex;
    }
    if (auto addrs = net::ListAddresses(*nl, 0); addrs.ok()) hosts = HostCandidates(*addrs, uplink, wg.ok() ? wg->index : -1);
  }
  absl::MutexLock l(&mu_);
  host_addresses_ = hosts;
  return hosts;
}

std::optional<v1::NodeInfo> Agent::SelfInfo() {
  // The host candidates first, from a netlink dump (not under mu_).
  const std::vector<net::IpAddress> hosts = HostAddresses();
  absl::MutexLock l(&mu_);
  // Before the NAT verdict the report carries none (peers add the key and routes, and
  // wait for the decision, which needs the verdict).
  if (pod_cidrs_.empty()) return std::nullopt;
  v1::NodeInfo n;
  n.set_name(opts_.node);
  n.set_wireguard_public_key(std::string(reinterpret_cast<const char*>(public_key_.bytes.data()), 32));
  for (const auto& c : pod_cidrs_) n.add_pod_cidrs(c);
  n.set_wireguard_backend(backend_ == wireguard::Backend::kKernel ? v1::WIRE_GUARD_BACKEND_KERNEL
                                                                  : v1::WIRE_GUARD_BACKEND_USERSPACE);
  AddHostCandidates(n, hosts, opts_.wg_port);
  if (snat_.randomizing_rules_size() > 0 || snat_.mitigation_installed()) *n.mutable_snat() = snat_;
  if (relay_) {
    auto* c = n.add_candidates();
    c->set_type(v1::CANDIDATE_TYPE_RELAYED);
    c->mutable_endpoint()->set_ip(relay_->relayed().ip.ToString());
    c->mutable_endpoint()->set_port(relay_->relayed().port);
  }
  // The verdict and the reflexive endpoint go out only once this agent has planned from a
  // snapshot: peers that learn them send to us half a second later, and by then our NAT
  // must be open towards them (the reconcile punched), or a NAT that does not drop
  // unsolicited inbound UDP binds its public port to their first packet (seeds/004).
  if (verdict_ && synced_) {
    *n.mutable_nat() = api::NatReportOf(*verdict_);
    if (verdict_->reflexive) {
      auto* c = n.add_candidates();
      c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
      c->mutable_endpoint()->set_ip(verdict_->reflexive->ip.ToString());
      c->mutable_endpoint()->set_port(verdict_->reflexive->port);
    }
    if (verdict6_) {
      *n.mutable_nat6() = api::NatReportOf(*verdict6_);
      api::AddReflexive6(n, verdict6_, hosts);
    }
  }
  return n;
}

void Agent::SendSelf() {
  auto info = SelfInfo();
  if (!info) return;
  v1::AgentMessage m;
  *m.mutable_node() = *std::move(info);
  Write(m);
}

void Agent::Write(const v1::AgentMessage& m) {
  absl::MutexLock l(&write_mu_);
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
  v1::SnatReport last;
  {
    absl::MutexLock l(&mu_);
    last = snat_;  // only this thread writes it
  }
  if (!opts_.snat_mitigation) {
    // Off (the default, or switched off): Weft's rule must not stay behind.
    if (last.mitigation_installed() || MitigationInstalled()) {
      if (absl::Status s = RemoveMitigation(); !s.ok()) Log(absl::StrCat("SNAT: removing the mitigation: ", s.ToString()));
    }
    return out;
  }
  if (!randomizing.empty() && !last.mitigation_installed()) {
    if (absl::Status s = InstallMitigation(opts_.wg_port); s.ok()) {
      *out.mutable_before_mitigation() = api::NatReportOf(verdict);
      probe_now_ = true;  // the verdict "after", at once
      Log(absl::StrCat("SNAT: ", randomizing.size(), " rule(s) randomize UDP ", opts_.wg_port, " (",
                       out.randomizing_rules(0), "); installed Weft's port-preserving rule; NAT before: ",
                       verdict.reason));
    } else {
      Log(absl::StrCat("SNAT: installing the mitigation: ", s.ToString()));
    }
  } else if (last.has_before_mitigation()) {
    *out.mutable_before_mitigation() = last.before_mitigation();
  }
  out.set_mitigation_installed(!randomizing.empty() && MitigationInstalled());
  return out;
}

void Agent::OnNatReport(const nat::PortProbeReport& r, bool changed) {
  v1::SnatReport snat = CheckSnat(r.verdict);  // runs nft/iptables: not under mu_
  absl::MutexLock l(&mu_);
  // Each family's line when its verdict changed (a round reports both).
  if (changed && (!verdict_ || !nat::SameVerdict(*verdict_, r.verdict))) Log(absl::StrCat("NAT: ", r.verdict.reason));
  if (changed && r.verdict6 && (!verdict6_ || !nat::SameVerdict(*verdict6_, *r.verdict6))) {
    Log(absl::StrCat("NAT over IPv6: ", r.verdict6->reason));
  }
  verdict_ = r.verdict;
  verdict6_ = r.verdict6;
  const bool snat_changed = snat.SerializeAsString() != snat_.SerializeAsString();
  snat_ = std::move(snat);
  if (!changed && !snat_changed) return;
  // Pairs without the controller's word are decided from the new verdict, and this side
  // sends first where it initiates: the reconcile punches and sends before the report goes
  // out, so our NAT is open towards those peers before they hear of the change.
  AskReconcile(kReport);
}

std::optional<v1::HealthReport> Agent::HealthIfChanged() {
  auto dev = device_->Get();
  if (!dev.ok()) return std::nullopt;
  v1::HealthReport r;
  absl::MutexLock l(&mu_);
  for (const auto& p : peers_->applied()) {
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

}  // namespace weft::agent
