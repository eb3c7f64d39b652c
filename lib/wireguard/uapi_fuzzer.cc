// libFuzzer target: replies from a userspace WireGuard's UAPI socket.
#include <cstddef>
#include <cstdint>

#include "lib/wireguard/uapi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)weft::wireguard::ParseUapiGet(text);
  (void)weft::wireguard::ParseUapiSetReply(text);
  return 0;
}
