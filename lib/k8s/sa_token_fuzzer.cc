// libFuzzer target: an agent's token as it arrives in a Hello (anyone may connect).
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/k8s/sa_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string token(reinterpret_cast<const char*>(data), size);
  (void)weft::k8s::PrecheckProjectedToken(token, "weft-controller", "system:serviceaccount:kube-system:weft-agent", 0);
  return 0;
}
