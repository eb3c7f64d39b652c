#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "cni-plugin/cni_result.h"
#include "cni-plugin/commands.h"
#include "cni-plugin/naming.h"
#include "cni-plugin/pod_wiring.h"
#include "lib/config/cni_error.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"

namespace weft::cni {

absl::StatusOr<ipam::FileStore> OpenStore(const CniNetConf& conf) {
  return ipam::FileStore::Open(absl::StrCat(conf.data_dir, "/networks/", conf.name));
}

absl::StatusOr<sys::FileLock> LockAttachments(const ipam::FileStore& store,
                                              sys::FileLock::Mode mode) {
  return sys::FileLock::Acquire(absl::StrCat(store.dir(), "/attachments.lock"), mode);
}

absl::StatusOr<sys::Netns> OpenPodNetns(const std::string& path) {
  auto ns = sys::Netns::Open(path);
  if (absl::IsNotFound(ns.status()) || absl::IsInvalidArgument(ns.status())) {
    return CniError(kUnknownContainer, absl::StatusCode::kNotFound, ns.status().message());
  }
  return ns;
}

absl::StatusOr<nlohmann::json> CmdAdd(const CniEnv& env, const CniNetConf& conf) {
  const ipam::Attachment att{env.container_id, env.ifname};
  ASSIGN_OR_RETURN(sys::Netns pod_ns, OpenPodNetns(env.netns));
  ASSIGN_OR_RETURN(ipam::FileStore store, OpenStore(conf));
  ASSIGN_OR_RETURN(sys::FileLock lock, LockAttachments(store, sys::FileLock::Mode::kShared));

  PodWiring w{conf.name, att, {}, conf.mtu};
  RETURN_IF_ERROR(store.Update([&](ipam::Pool& pool) -> absl::Status {
    for (const net::IpPrefix& cidr : conf.pod_cidrs) {
      ASSIGN_OR_RETURN(ipam::Allocation a,
                       pool.Allocate(cidr, att, env.pod_namespace(), env.pod_name()));
      w.pod_ips.push_back(a.ip);
    }
    return absl::OkStatus();
  }));
  // From here on, a failure undoes everything: the addresses and the interfaces.
  absl::Cleanup release = [&] { (void)store.Update([&](ipam::Pool& p) { p.Release(att); return absl::OkStatus(); }); };

  bool v4 = false, v6 = false;
  for (const auto& ip : w.pod_ips) (ip.is_v4() ? v4 : v6) = true;
  RETURN_IF_ERROR(EnsureHostForwarding(v4, v6));

  ASSIGN_OR_RETURN(net::NlSocket host, net::NlSocket::Open());
  absl::StatusOr<WiredPod> wired = Wire(host, pod_ns, w);
  if (!wired.ok()) {
    (void)Unwire(host, att);
    return Annotate(wired.status(), absl::StrCat("wire pod ", env.container_id, "/", env.ifname));
  }
  std::move(release).Cancel();

  CniResult r;
  r.interfaces.push_back({wired->host_ifname, wired->host_mac, conf.mtu, ""});
  r.interfaces.push_back({env.ifname, wired->pod_mac, conf.mtu, env.netns});
  for (const auto& ip : w.pod_ips) {
    r.ips.push_back({{ip, ip.bit_length()}, GatewayFor(ip.family()), 1});
    r.routes.push_back({net::IpPrefix::Default(ip.family()), GatewayFor(ip.family())});
  }
  return EncodeResult(r, conf.cni_version, conf.prev_result);
}

}  // namespace weft::cni
