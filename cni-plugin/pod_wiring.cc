#include "cni-plugin/pod_wiring.h"

#include <fcntl.h>
#include <linux/if.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/rtnetlink.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cni-plugin/naming.h"
#include "lib/config/cni_error.h"
#include "lib/net/rtnl_addr.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_neigh.h"
#include "lib/net/rtnl_route.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"
#include "lib/sys/sysctl.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {

net::IpPrefix HostPrefix(const net::IpAddress& ip) { return {ip, ip.bit_length()}; }

absl::Status ConfigureHostEnd(net::NlSocket& host, int ifindex, const PodWiring& w,
                              const net::MacAddress& pod_mac) {
  // The alias first: from here on GC can tell whose link this is.
  RETURN_IF_ERROR(net::SetLinkUp(host, ifindex, HostVethAlias(w.network, w.attachment)));
  for (const net::IpAddress& ip : w.pod_ips) {
    const net::IpAddress& gw = GatewayFor(ip.family());
    // fe80::1/64 gives the link its fe80::/64 route; 169.254.1.1 needs no subnet route.
    net::IpPrefix gw_prefix = ip.is_v4() ? HostPrefix(gw) : net::IpPrefix{gw, 64};
    absl::Status s = net::AddAddress(host, ifindex, gw_prefix,
                                     {.scope = RT_SCOPE_LINK, .no_dad = !ip.is_v4()});
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  }
  for (const net::IpAddress& ip : w.pod_ips) {
    RETURN_IF_ERROR(net::SetPermanentNeighbor(host, ifindex, ip, pod_mac));
    net::Route r{.dst = HostPrefix(ip), .ifindex = ifindex, .scope = RT_SCOPE_LINK};
    RETURN_IF_ERROR(net::AddRoute(host, r, /*replace=*/true));
  }
  return absl::OkStatus();
}

absl::Status ConfigurePodEnd(net::NlSocket& pod, int ifindex, const PodWiring& w) {
  for (const net::IpAddress& ip : w.pod_ips) {
    RETURN_IF_ERROR(net::AddAddress(pod, ifindex, HostPrefix(ip),
                                    {.no_dad = !ip.is_v4(), .no_prefix_route = true}));
  }
  RETURN_IF_ERROR(net::SetLinkUp(pod, ifindex));
  for (const net::IpAddress& ip : w.pod_ips) {
    const net::IpAddress& gw = GatewayFor(ip.family());
    RETURN_IF_ERROR(net::SetPermanentNeighbor(pod, ifindex, gw, HostMac()));
    if (ip.is_v4()) {
      net::Route to_gw{.dst = HostPrefix(gw), .ifindex = ifindex, .scope = RT_SCOPE_LINK};
      RETURN_IF_ERROR(net::AddRoute(pod, to_gw, /*replace=*/true));
    }
    net::Route def{.dst = net::IpPrefix::Default(ip.family()), .gateway = gw, .ifindex = ifindex,
                   .onlink = ip.is_v4()};
    RETURN_IF_ERROR(net::AddRoute(pod, def, /*replace=*/true));
  }
  return absl::OkStatus();
}

absl::Status Mismatch(absl::string_view what) {
  return CniError(kCheckMismatch, absl::StatusCode::kFailedPrecondition, what);
}

bool HasAddress(const std::vector<net::AddrInfo>& addrs, const net::IpAddress& ip) {
  return std::any_of(addrs.begin(), addrs.end(),
                     [&](const net::AddrInfo& a) { return a.prefix.address == ip; });
}

}  // namespace

absl::StatusOr<WiredPod> Wire(net::NlSocket& host, const sys::Netns& pod_ns, const PodWiring& w) {
  WiredPod out{HostVethName(w.attachment), HostMac(), PodMac(w.attachment)};
  net::VethSpec spec{.name = out.host_ifname,
                     .mac = out.host_mac,
                     .peer_name = w.attachment.ifname,
                     .peer_mac = out.pod_mac,
                     .peer_netns_fd = pod_ns.fd(),
                     .mtu = w.mtu};
  absl::Status created = net::CreateVeth(host, spec);
  if (absl::IsAlreadyExists(created)) {
    // Either our host end survived a crashed ADD (replace it), or the pod already has an
    // interface of that name (refuse: it is not ours to delete).
    if (auto stale = net::GetLink(host, out.host_ifname); stale.ok()) {
      RETURN_IF_ERROR(Unwire(host, w.attachment));  // a background DEL may beat us to it
      created = net::CreateVeth(host, spec);
    }
  }
  if (absl::IsAlreadyExists(created)) {
    return CniError(kInvalidEnvironment, absl::StatusCode::kAlreadyExists,
                    absl::StrCat("the sandbox already has an interface named ", w.attachment.ifname));
  }
  RETURN_IF_ERROR(created);

  ASSIGN_OR_RETURN(net::LinkInfo host_link, net::GetLink(host, out.host_ifname));
  RETURN_IF_ERROR(ConfigureHostEnd(host, host_link.index, w, out.pod_mac));

  ASSIGN_OR_RETURN(net::NlSocket pod, sys::OpenNlSocketIn(pod_ns));
  ASSIGN_OR_RETURN(net::LinkInfo pod_link, net::GetLink(pod, w.attachment.ifname));
  RETURN_IF_ERROR(ConfigurePodEnd(pod, pod_link.index, w));
  return out;
}

absl::StatusOr<bool> Isolate(net::NlSocket& host, const ipam::Attachment& a) {
  auto link = net::GetLink(host, HostVethName(a));
  if (absl::IsNotFound(link.status())) return false;
  RETURN_IF_ERROR(link.status());
  RETURN_IF_ERROR(net::SetLinkDown(host, link->index));
  return true;
}

void UnwireInBackground(const ipam::Attachment& a) {
  pid_t child = fork();
  if (child < 0) {
    // No process to spare: delete in the foreground instead.
    if (auto nl = net::NlSocket::Open(); nl.ok()) (void)Unwire(*nl, a);
    return;
  }
  if (child > 0) {
    waitpid(child, nullptr, 0);
    return;
  }
  // The child detaches; the grandchild does the work and is reparented to init, so the
  // runtime (which waits for our stdout to close) is not held up by it.
  setsid();
  if (fork() != 0) _exit(0);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
  }
  if (auto nl = net::NlSocket::Open(); nl.ok()) (void)Unwire(*nl, a);
  _exit(0);
}

absl::Status Unwire(net::NlSocket& host, const ipam::Attachment& a) {
  absl::Status s = net::DeleteLink(host, HostVethName(a));
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status Inspect(net::NlSocket& host, const sys::Netns& pod_ns, const PodWiring& w) {
  const std::string host_name = HostVethName(w.attachment);
  auto host_link = net::GetLink(host, host_name);
  if (absl::IsNotFound(host_link.status())) return Mismatch(absl::StrCat("host interface ", host_name, " is missing"));
  RETURN_IF_ERROR(host_link.status());
  if (!host_link->up()) return Mismatch(absl::StrCat("host interface ", host_name, " is down"));

  ASSIGN_OR_RETURN(net::NlSocket pod, sys::OpenNlSocketIn(pod_ns));
  auto pod_link = net::GetLink(pod, w.attachment.ifname);
  if (absl::IsNotFound(pod_link.status())) {
    return Mismatch(absl::StrCat("interface ", w.attachment.ifname, " is missing in ", pod_ns.path()));
  }
  RETURN_IF_ERROR(pod_link.status());
  if (!pod_link->up()) return Mismatch(absl::StrCat("interface ", w.attachment.ifname, " is down"));
  if (pod_link->mac != PodMac(w.attachment)) {
    return Mismatch(absl::StrCat("interface ", w.attachment.ifname, " has MAC ", pod_link->mac.ToString(),
                                 ", not ", PodMac(w.attachment).ToString()));
  }
  ASSIGN_OR_RETURN(auto pod_addrs, net::ListAddresses(pod, pod_link->index));
  for (const net::IpAddress& ip : w.pod_ips) {
    if (!HasAddress(pod_addrs, ip)) {
      return Mismatch(absl::StrCat("address ", ip.ToString(), " is missing on ", w.attachment.ifname));
    }
    ASSIGN_OR_RETURN(auto routes, net::ListRoutes(pod, ip.family()));
    const net::IpAddress& gw = GatewayFor(ip.family());
    bool has_default = std::any_of(routes.begin(), routes.end(), [&](const net::Route& r) {
      return r.dst.length == 0 && r.gateway == gw && r.ifindex == pod_link->index;
    });
    if (!has_default) return Mismatch(absl::StrCat("default route via ", gw.ToString(), " is missing"));
    ASSIGN_OR_RETURN(auto host_routes, net::ListRoutes(host, ip.family()));
    bool has_host_route = std::any_of(host_routes.begin(), host_routes.end(), [&](const net::Route& r) {
      return r.dst == HostPrefix(ip) && r.ifindex == host_link->index;
    });
    if (!has_host_route) return Mismatch(absl::StrCat("host route to ", ip.ToString(), " is missing"));
  }
  return absl::OkStatus();
}

absl::Status EnsureHostForwarding(bool v4, bool v6) {
  if (v4) RETURN_IF_ERROR(sys::EnsureSysctl("net/ipv4/ip_forward", "1"));
  if (v6) RETURN_IF_ERROR(sys::EnsureSysctl("net/ipv6/conf/all/forwarding", "1"));
  return absl::OkStatus();
}

}  // namespace weft::cni
