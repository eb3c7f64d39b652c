// Which WireGuard the node runs: the kernel's (generic netlink, the performance path; the
// device outlives any process) or wireguard-go (userspace, over its UAPI socket), and how
// a node moves between them. Pure: the caller says what exists and what the kernel can do.
#ifndef WEFT_LIB_WIREGUARD_BACKEND_H_
#define WEFT_LIB_WIREGUARD_BACKEND_H_

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace weft::wireguard {

enum class Backend { kKernel, kUserspace };
// "kernel", "userspace".
absl::string_view BackendName(Backend b);

// --wireguard: auto (the kernel's when it can make the device, else wireguard-go), kernel
// (or fail), userspace.
enum class BackendChoice { kAuto, kKernel, kUserspace };
absl::StatusOr<BackendChoice> ParseBackendChoice(absl::string_view s);

// The backend of an existing link of the device's name, from its kind (IFLA_INFO_KIND):
// "wireguard" is the kernel's; wireguard-go's device is a "tun". nullopt for anything
// else (not ours to adopt or remove).
std::optional<Backend> BackendOfLinkKind(absl::string_view kind);

struct BackendPlan {
  Backend use = Backend::kUserspace;
  bool adopt = false;            // the device exists with that backend: keep it and its peers
  bool remove_existing = false;  // a device of the other backend is there: remove it first
  std::string why;               // one line for the log
};
// `existing`: the backend of the device there now (nullopt: none); `kernel_can`: whether
// the kernel makes WireGuard links (asked only when it matters). FailedPrecondition when
// the kernel is asked for and the kernel has none.
absl::StatusOr<BackendPlan> PlanBackend(BackendChoice choice, std::optional<Backend> existing, bool kernel_can);

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_BACKEND_H_
