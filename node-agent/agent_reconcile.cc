// The reconcile: the peers the device should hold (PeerReconciler, planned under mu_),
// written to the device and the routing table outside it. Only the reconciler thread
// (a sys::Coalescer) runs it, so writes never interleave and a burst of changes is one run.
#include <linux/rtnetlink.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/api/node_nat.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_route.h"
#include "lib/status/status_macros.h"
#include "lib/sys/steady_ms.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"

namespace weft::agent {
namespace {

// rtm_protocol of the routes the agent makes ("ip route show proto 87"): unused by
// iproute2's rt_protos, so nothing else's routes look like ours.
constexpr uint8_t kRouteProtocol = 87;
constexpr int kIpv6MinMtu = 1280;  // RFC 8200 §5

size_t Sending(const std::vector<PlannedPeer>& peers) {
  return std::count_if(peers.begin(), peers.end(), [](const PlannedPeer& p) { return p.config.endpoint.has_value(); });
}

}  // namespace

void Agent::ReconcileAndReport(uint32_t flags) {
  size_t sending = 0;
  {
    absl::MutexLock l(&mu_);
    sending = Sending(peers_->applied());
  }
  if (absl::Status s = Reconcile(); !s.ok()) Log(absl::StrCat("applying controller state: ", s.ToString()));
  if ((flags & kReport) == 0) return;
  size_t now_sending = 0;
  {
    absl::MutexLock l(&mu_);
    now_sending = Sending(peers_->applied());
  }
  // This side just started sending to some peers: its first packets leave before the
  // report that tells those peers where to send, so our NAT is open when theirs arrive.
  if (now_sending > sending) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SendSelf();
}

absl::Status Agent::Reconcile() {
  std::map<std::string, net::Endpoint> proxies = RelayProxies();  // asks the forwarder: not under mu_
  // The node's own addresses (its global IPv6 one decides pairs as the controller will):
  // each report refreshes them; a netlink dump here only before the first.
  bool hosts_known;
  {
    absl::MutexLock l(&mu_);
    hosts_known = host_addresses_.has_value();
  }
  if (!hosts_known) (void)HostAddresses();  // not under mu_
  PeerReconciler::Step step;
  wireguard::DeviceConfig write;
  {
    absl::MutexLock l(&mu_);
    // Before the first snapshot this agent knows no node: planning now would empty the
    // device it adopted (the NAT verdict can come before the controller answers).
    if (!synced_) return absl::OkStatus();
    // What deciding a pair locally needs of this node: its name, NAT verdict and host
    // candidates (as its report has them).
    std::optional<v1::NodeInfo> self;
    if (verdict_) {
      self.emplace();
      self->set_name(opts_.node);
      *self->mutable_nat() = api::NatReportOf(*verdict_);
      if (host_addresses_) {
        AddHostCandidates(*self, *host_addresses_, opts_.wg_port);
        api::AddReflexive6(*self, verdict6_, *host_addresses_);  // behind NPTv6: the address peers see
      }
    }
    PeerReconciler::Inputs in{.nodes = &nodes_, .directives = &directives_, .self_info = self ? &*self : nullptr,
                              .proxies = std::move(proxies)};
    for (const auto& [node, m] : mtus_) in.path_mtus[node] = m.search.mtu();
    step = peers_->Plan(in, sys::SteadyMs());
    std::erase_if(mtus_, [&](const auto& kv) {
      return std::none_of(step.desired.begin(), step.desired.end(), [&](const PlannedPeer& p) { return p.node == kv.first; });
    });
    write = step.diff;
    // Endpoints the path watch wants written again (WireGuard roamed away from them).
    for (const auto& p : step.desired) {
      if (!reassert_.contains(p.node) || !p.config.endpoint) continue;
      if (std::none_of(write.peers.begin(), write.peers.end(),
                       [&](const wireguard::PeerConfig& c) { return c.public_key == p.config.public_key; })) {
        write.peers.push_back(p.config);
      }
    }
    reassert_.clear();
  }
  // Punches leave before the device sends to a new endpoint: our NAT is open first.
  Punch(step.punch);
  if (!write.peers.empty()) RETURN_IF_ERROR(device_->Set(write));
  std::vector<PlannedPeer> desired = step.desired;
  {
    absl::MutexLock l(&mu_);
    for (const auto& line : step.changes) Log(line);
    for (const auto& p : step.desired) {
      for (const auto& a : peers_->applied()) {
        if (a.node == p.node && a.path_mtu != p.path_mtu && p.path_mtu > 0) {
          if (auto m = mtus_.find(p.node); m != mtus_.end()) {
            Log(absl::StrCat("peer ", p.node, ": path MTU ", m->second.search.reason()));
          }
        }
      }
    }
    peers_->Commit(std::move(step));
  }
  return SyncRoutes(desired);
}

absl::Status Agent::SyncRoutes(const std::vector<PlannedPeer>& desired) {
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
      // IPv6 has no MTU below 1280 (the kernel refuses such a route): an IPv6 pod's
      // packets up to 1280 then cross such a path only where the underlay fragments.
      const int route_mtu = !r.address.is_v4() && mtu > 0 && mtu < kIpv6MinMtu ? kIpv6MinMtu : mtu;
      const net::Route route{.dst = r, .ifindex = link.index, .scope = RT_SCOPE_LINK, .protocol = kRouteProtocol,
                             .mtu = route_mtu};
      auto cur = routes_.find(key);
      if (cur != routes_.end() && cur->second == route_mtu) {
        want[key] = route_mtu;
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
      want[key] = route_mtu;
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

}  // namespace weft::agent
