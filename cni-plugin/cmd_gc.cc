#include <set>

#include "absl/strings/str_cat.h"
#include "cni-plugin/commands.h"
#include "cni-plugin/naming.h"
#include "cni-plugin/pod_wiring.h"
#include "lib/config/cni_error.h"
#include "lib/net/rtnl_link.h"
#include "lib/status/status_macros.h"

namespace weft::cni {

absl::Status CmdGc(const CniEnv&, const CniNetConf& conf) {
  if (!conf.valid_attachments) {
    return CniError(kInvalidConfig, absl::StatusCode::kInvalidArgument,
                    "GC needs \"cni.dev/valid-attachments\"");
  }
  const std::set<ipam::Attachment> valid(conf.valid_attachments->begin(),
                                         conf.valid_attachments->end());
  ASSIGN_OR_RETURN(ipam::FileStore store, OpenStore(conf));
  ASSIGN_OR_RETURN(sys::FileLock lock, LockAttachments(store, sys::FileLock::Mode::kExclusive));
  std::set<std::string> valid_names;
  for (const auto& a : valid) valid_names.insert(HostVethName(a));

  // Interfaces first: an address is released only once nothing can still use it.
  ASSIGN_OR_RETURN(net::NlSocket host, net::NlSocket::Open());
  ASSIGN_OR_RETURN(std::vector<net::LinkInfo> links, net::ListLinks(host));
  absl::Status first_error;
  for (const net::LinkInfo& link : links) {
    if (auto parsed = ParseHostVethAlias(link.alias); parsed) {
      if (parsed->network != conf.name || valid.contains(parsed->attachment)) continue;
    } else if (!link.alias.empty() || !IsHostVethName(link.name) || link.kind != "veth" ||
               valid_names.contains(link.name)) {
      continue;
    }
    // A weft veth without an alias is an ADD killed between creating the pair and
    // labelling it; no ADD is in flight now (we hold the lock exclusively).
    absl::Status s = net::DeleteLink(host, link.name);
    if (!s.ok() && !absl::IsNotFound(s) && first_error.ok()) first_error = s;
  }
  RETURN_IF_ERROR(store.Update([&](ipam::Pool& pool) {
    pool.ReleaseAllExcept(valid);
    return absl::OkStatus();
  }));
  return first_error;
}

}  // namespace weft::cni
