// libFuzzer target: whatever a raw ICMP or ICMPv6 socket returns (any host's) is parsed
// without crashing or reading out of bounds.
#include <cstddef>
#include <cstdint>

#include "lib/net/icmp_echo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)weft::net::ParseEchoReply(absl::MakeConstSpan(data, size));
  static const weft::net::IpAddress kFrom = *weft::net::IpAddress::Parse("fd00:10:244:1::1");
  (void)weft::net::ParseEchoReply6(absl::MakeConstSpan(data, size), kFrom);
  return 0;
}
