// libFuzzer target: whatever reaches the path-MTU probe port (any node or pod can send
// there) is parsed without crashing or reading out of bounds.
#include <cstddef>
#include <cstdint>

#include "lib/net/mtu_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)weft::net::ParseMtuProbe(absl::MakeConstSpan(data, size));
  return 0;
}
