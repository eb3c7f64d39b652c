// libFuzzer target: the IPAM store as read from disk (a node's file, which a bug, a
// crash or a hand edit may have spoiled). Parse never crashes; what it accepts
// round-trips; Recover keeps whatever it can and always yields a store Parse accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/ipam/pool.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto pool = weft::ipam::Pool::Parse(text); pool.ok()) {
    auto again = weft::ipam::Pool::Parse(pool->Serialize());
    if (!again.ok() || again->Serialize() != pool->Serialize()) __builtin_trap();
  }
  int dropped = 0;
  const weft::ipam::Pool recovered = weft::ipam::Pool::Recover(text, &dropped);
  if (!weft::ipam::Pool::Parse(recovered.Serialize()).ok()) __builtin_trap();
  return 0;
}
