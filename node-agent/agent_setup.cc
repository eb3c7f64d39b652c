// The node's set-up from the controller's Welcome: its pod CIDRs (saved), the device's
// addresses and MTU, the egress masquerade, the CNI conflist.
#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/net/rtnl_addr.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/uplink_mtu.h"
#include "lib/status/status_macros.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"
#include "node-agent/egress.h"
#include "node-agent/node_files.h"

namespace weft::agent {
namespace {

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

}  // namespace

absl::Status Agent::OnWelcome(const v1::Welcome& w) {
  // Typed before anything is used: each CIDR a network, a few of them; what does not
  // parse refuses the whole Welcome (nothing of it is applied).
  if (w.pod_cidrs_size() == 0 || w.pod_cidrs_size() > 4 || w.cluster_cidrs_size() == 0 || w.cluster_cidrs_size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat("Welcome refused: ", w.pod_cidrs_size(), " pod CIDRs and ",
                                                   w.cluster_cidrs_size(), " cluster CIDRs (1-4 and 1-16 expected)"));
  }
  ASSIGN_OR_RETURN(const std::vector<net::IpPrefix> own, WelcomeNetworks(w.pod_cidrs(), "pod"));
  ASSIGN_OR_RETURN(const std::vector<net::IpPrefix> cluster, WelcomeNetworks(w.cluster_cidrs(), "cluster"));
  ASSIGN_OR_RETURN(const std::string egress, EgressRuleset(own, cluster, opts_.wg_interface, opts_.wg_port));
  {
    absl::MutexLock l(&mu_);
    epoch_ = w.epoch();
    SetRelays(w.relays());
  }
  std::vector<std::string> pod_cidrs;
  for (const auto& p : own) pod_cidrs.push_back(p.ToString());
  // The node's set-up, outside the state lock (files, netlink, nft); only this thread
  // (the session's) does it.
  RETURN_IF_ERROR(WriteFileAtomically(opts_.state_dir + "/pod_cidrs", absl::StrJoin(pod_cidrs, "\n") + "\n", 0600));
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
  if (link.mtu != mtu) {
    if (absl::Status s = net::SetLinkMtu(nl, link.index, mtu); !s.ok()) Log(absl::StrCat("WireGuard MTU: ", s.message()));
  }
  mkdir(opts_.cni_conf_dir.c_str(), 0755);
  RETURN_IF_ERROR(WriteFileAtomically(opts_.cni_conf_dir + "/10-weft.conflist",
                                      CniConflist(pod_cidrs, mtu, opts_.cni_data_dir), 0644));
  {
    absl::MutexLock l(&mu_);
    pod_cidrs_ = pod_cidrs;
    own_cidrs_ = own;
    cluster_cidrs_ = cluster;
    tunnel_mtu_ = mtu;
    configured_ = true;
  }
  Log(absl::StrCat("pod CIDRs ", absl::StrJoin(pod_cidrs, ", "), "; CNI config written"));
  return absl::OkStatus();
}

int Agent::TunnelMtu(net::NlSocket& nl) {
  if (opts_.pod_mtu > 0) return opts_.pod_mtu;
  // Auto: the uplink towards where WireGuard's packets go (the STUN servers stand in for
  // the peers; the controller too), less WireGuard's overhead. Only what is given as an
  // address: resolving names here would wait on DNS, which on a fresh cluster is not up
  // yet; without an address the default route's device stands in.
  std::vector<net::IpAddress> to;
  for (const auto& e : opts_.stun) to.push_back(e.ip);
  for (const auto& e : opts_.stun6) to.push_back(e.ip);
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

}  // namespace weft::agent
