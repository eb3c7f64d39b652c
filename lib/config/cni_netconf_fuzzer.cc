// libFuzzer target: the CNI configuration parser must never crash, hang or throw,
// whatever bytes the runtime (or an attacker with write access to net.d) hands it.
#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "lib/config/cni_netconf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto conf = weft::cni::ParseCniNetConf(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (conf.ok() && conf->prev_result) {
    // What the plugin does with a parsed prevResult must be safe too.
    (void)conf->prev_result->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
