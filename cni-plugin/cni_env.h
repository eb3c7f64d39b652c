// The CNI_* environment of one plugin invocation, parsed and validated (pure).
#ifndef WEFT_CNI_PLUGIN_CNI_ENV_H_
#define WEFT_CNI_PLUGIN_CNI_ENV_H_

#include <map>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace weft::cni {

enum class Command { kAdd, kDel, kCheck, kGc, kStatus, kVersion };

struct CniEnv {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;  // may be empty for DEL (containerd, after the sandbox is gone)
  std::string ifname;
  std::string path;
  // CNI_ARGS as key/value pairs ("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;...").
  std::map<std::string, std::string> args;

  absl::string_view pod_namespace() const;
  absl::string_view pod_name() const;
};

// Looks up one environment variable; nullptr when unset.
using GetEnvFn = absl::FunctionRef<const char*(const char*)>;

// Reads CNI_COMMAND and what that command needs. Errors carry CNI code 4 (invalid
// environment), naming the variable; an unknown CNI_ARGS key is refused unless
// IgnoreUnknown=1 is among the args, as the reference plugins do.
absl::StatusOr<CniEnv> ParseCniEnv(GetEnvFn getenv_fn);

// "ADD", "DEL", ...
absl::string_view CommandName(Command c);

// Linux interface names: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
bool ValidIfName(absl::string_view name);
// Container IDs (CNI spec): an alphanumeric, then alphanumerics, '_', '.', '-'.
bool ValidContainerId(absl::string_view id);

}  // namespace weft::cni

#endif  // WEFT_CNI_PLUGIN_CNI_ENV_H_
