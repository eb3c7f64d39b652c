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
  //
  // Returning fast matters: the runtime holds the pod's sandbox while DEL runs, and the
  // kernel takes 15-30 ms to unregister a veth. So the pod is cut off (link down: its
  // routes are gone) and its address released before we return; the link itself is
  // deleted by a background process that holds our shared lock until it is done, so a
  // GC never races it. An address reused before that is safe: ADD replaces the /32.
  ASSIGN_OR_RETURN(net::NlSocket host, net::NlSocket::Open());
  ASSIGN_OR_RETURN(bool has_link, Isolate(host, att));
  RETURN_IF_ERROR(store.Update([&](ipam::Pool& pool) {
    pool.Release(att);
    return absl::OkStatus();
  }));
  if (has_link) UnwireInBackground(att);
  return absl::OkStatus();
}

}  // namespace weft::cni
