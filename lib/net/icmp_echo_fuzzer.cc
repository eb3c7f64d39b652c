// libFuzzer target: whatever a raw ICMP socket returns (any host's ICMP) is parsed
// without crashing or reading out of bounds.
#include <cstddef>
#include <cstdint>

#include "lib/net/icmp_echo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)weft::net::ParseEchoReply(absl::MakeConstSpan(data, size));
  return 0;
}
