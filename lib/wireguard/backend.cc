#include "lib/wireguard/backend.h"

#include "absl/strings/str_cat.h"

namespace weft::wireguard {

absl::string_view BackendName(Backend b) { return b == Backend::kKernel ? "kernel" : "userspace"; }

absl::StatusOr<BackendChoice> ParseBackendChoice(absl::string_view s) {
  if (s == "auto") return BackendChoice::kAuto;
  if (s == "kernel") return BackendChoice::kKernel;
  if (s == "userspace") return BackendChoice::kUserspace;
  return absl::InvalidArgumentError(absl::StrCat("WireGuard backend \"", s.substr(0, 32),
                                                 "\": expected auto, kernel or userspace"));
}

std::optional<Backend> BackendOfLinkKind(absl::string_view kind) {
  if (kind == "wireguard") return Backend::kKernel;
  if (kind == "tun") return Backend::kUserspace;
  return std::nullopt;
}

absl::StatusOr<BackendPlan> PlanBackend(BackendChoice choice, std::optional<Backend> existing, bool kernel_can) {
  BackendPlan p;
  switch (choice) {
    case BackendChoice::kUserspace:
      p.use = Backend::kUserspace;
      p.why = "userspace WireGuard (wireguard-go), as asked";
      break;
    case BackendChoice::kKernel:
      if (!kernel_can && existing != Backend::kKernel) {
        return absl::FailedPreconditionError(
            "--wireguard=kernel, but this kernel makes no WireGuard device (no wireguard module: load it, or use "
            "--wireguard=auto or userspace)");
      }
      p.use = Backend::kKernel;
      p.why = "kernel WireGuard, as asked";
      break;
    case BackendChoice::kAuto:
      if (existing == Backend::kKernel || kernel_can) {
        p.use = Backend::kKernel;
        p.why = "kernel WireGuard (the kernel makes the device)";
      } else {
        p.use = Backend::kUserspace;
        p.why = "userspace WireGuard (wireguard-go): this kernel makes no WireGuard device";
      }
      break;
  }
  if (existing == p.use) {
    p.adopt = true;
  } else if (existing) {
    p.remove_existing = true;
    absl::StrAppend(&p.why, "; replacing the ", BackendName(*existing), " device there");
  }
  return p;
}

}  // namespace weft::wireguard
