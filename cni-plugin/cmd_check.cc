#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cni-plugin/cni_result.h"
#include "cni-plugin/commands.h"
#include "cni-plugin/pod_wiring.h"
#include "lib/config/cni_error.h"
#include "lib/status/status_macros.h"

namespace weft::cni {

absl::Status CmdCheck(const CniEnv& env, const CniNetConf& conf) {
  if (CompareVersions(conf.cni_version, "0.4.0") < 0) {
    return CniError(kIncompatibleVersion, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("CHECK needs cniVersion 0.4.0 or later, not ", conf.cni_version));
  }
  if (!conf.prev_result) {
    return CniError(kInvalidConfig, absl::StatusCode::kInvalidArgument,
                    "CHECK needs prevResult (the ADD result)");
  }
  const ipam::Attachment att{env.container_id, env.ifname};
  ASSIGN_OR_RETURN(auto expected, PodAddressesFromResult(*conf.prev_result, env.ifname));
  ASSIGN_OR_RETURN(ipam::FileStore store, OpenStore(conf));
  ASSIGN_OR_RETURN(ipam::Pool pool, store.Read());
  std::vector<ipam::Allocation> allocs = pool.FindAll(att);
  PodWiring w{conf.name, att, {}, conf.mtu};
  for (const auto& a : allocs) w.pod_ips.push_back(a.ip);
  for (const net::IpPrefix& p : expected) {
    if (std::find(w.pod_ips.begin(), w.pod_ips.end(), p.address) == w.pod_ips.end()) {
      return CniError(kCheckMismatch, absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("address ", p.ToString(), " from prevResult is not allocated to ",
                                   env.container_id, "/", env.ifname));
    }
  }
  if (w.pod_ips.empty()) {
    return CniError(kCheckMismatch, absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("no address is allocated to ", env.container_id, "/", env.ifname));
  }
  ASSIGN_OR_RETURN(sys::Netns pod_ns, OpenPodNetns(env.netns));
  ASSIGN_OR_RETURN(net::NlSocket host, net::NlSocket::Open());
  return Inspect(host, pod_ns, w);
}

}  // namespace weft::cni
