// The monotonic clock in milliseconds, for timers and state machines fed a `now`.
#ifndef WEFT_LIB_SYS_STEADY_MS_H_
#define WEFT_LIB_SYS_STEADY_MS_H_

#include <chrono>
#include <cstdint>

namespace weft::sys {

inline int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_STEADY_MS_H_
