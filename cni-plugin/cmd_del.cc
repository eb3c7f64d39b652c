#include "absl/strings/str_cat.h"
#include "cni-plugin/commands.h"
#include "cni-plugin/pod_wiring.h"
#include "lib/status/status_macros.h"

namespace weft::cni {

absl::Status CmdDel(const CniEnv& env, const CniNetConf& conf) {
  const ipam::Attachment att{env.container_id, env.ifname};
  // The host end is named after the attachment, so the netns is not needed to find it:
  // containerd sends an empty CNI_NETNS once the sandbox is gone, and the address must
  // still be released.
  ASSIGN_OR_RETURN(ipam::FileStore store, OpenStore(conf));
  ASSIGN_OR_RETURN(sys::FileLock lock, LockAttachments(store, sys::FileLock::Mode::kShared));
  ASSIGN_OR_RETURN(net::NlSocket host, net::NlSocket::Open());
  RETURN_IF_ERROR(Unwire(host, att));
  return store.Update([&](ipam::Pool& pool) {
    pool.Release(att);
    return absl::OkStatus();
  });
}

}  // namespace weft::cni
