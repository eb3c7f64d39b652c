// The CNI verbs. Each takes the parsed environment and configuration and returns a
// status that carries its CNI error code (lib/config/cni_error.h).
#ifndef WEFT_CNI_PLUGIN_COMMANDS_H_
#define WEFT_CNI_PLUGIN_COMMANDS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "cni-plugin/cni_env.h"
#include "lib/config/cni_netconf.h"
#include "lib/ipam/file_store.h"
#include "lib/sys/file_lock.h"
#include "lib/sys/netns.h"
#include "nlohmann/json.hpp"

namespace weft::cni {

// ADD: allocates the pod's addresses, wires the pod, returns the result JSON. On any
// error everything it made is removed again: no veth, no address is left behind.
absl::StatusOr<nlohmann::json> CmdAdd(const CniEnv& env, const CniNetConf& conf);
// DEL: removes the pod's wiring and releases its addresses. Idempotent: a missing netns,
// interface or allocation is success.
absl::Status CmdDel(const CniEnv& env, const CniNetConf& conf);
// CHECK: verifies the wiring against prevResult and the IPAM store.
absl::Status CmdCheck(const CniEnv& env, const CniNetConf& conf);
// GC: releases addresses and deletes host interfaces of attachments not in the
// configuration's valid-attachments list.
absl::Status CmdGc(const CniEnv& env, const CniNetConf& conf);
// STATUS: OK when the plugin can serve ADDs (store readable, pod CIDRs configured).
absl::Status CmdStatus(const CniEnv& env, const CniNetConf& conf);

// Opens the pod's netns; a missing one carries CNI code 3 (unknown container).
absl::StatusOr<sys::Netns> OpenPodNetns(const std::string& path);

// The IPAM store of `conf`'s network: <dataDir>/networks/<name>.
absl::StatusOr<ipam::FileStore> OpenStore(const CniNetConf& conf);

// ADD and DEL hold this shared, GC exclusive: GC never sees an attachment half made or
// half removed, while ADDs and DELs still run in parallel with each other.
absl::StatusOr<sys::FileLock> LockAttachments(const ipam::FileStore& store, sys::FileLock::Mode mode);

// One invocation end to end: what to print on stdout and the exit code.
struct PluginOutput {
  int exit_code = 0;
  std::string stdout_text;
};
PluginOutput RunPlugin(GetEnvFn getenv_fn, absl::string_view stdin_data);

}  // namespace weft::cni

#endif  // WEFT_CNI_PLUGIN_COMMANDS_H_
