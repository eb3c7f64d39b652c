#include "absl/strings/str_cat.h"
#include "cni-plugin/commands.h"
#include "lib/config/cni_error.h"

namespace weft::cni {

absl::Status CmdStatus(const CniEnv&, const CniNetConf& conf) {
  auto store = OpenStore(conf);
  absl::Status s = store.ok() ? store->Read().status() : store.status();
  if (!s.ok()) {
    return CniError(kPluginNotAvailable, absl::StatusCode::kUnavailable,
                    absl::StrCat("IPAM store unusable: ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace weft::cni
