#include "lib/api/reconnect_backoff.h"

#include <algorithm>

namespace weft::api {

std::chrono::milliseconds ReconnectBackoff::Next(std::chrono::milliseconds lasted, bool standby, uint32_t random) {
  if (lasted > kFreshAfter) backoff_ = std::chrono::milliseconds(0);
  backoff_ = std::clamp(backoff_ * 2, kFirst, kMax);
  std::chrono::milliseconds wait = backoff_ / 2 + std::chrono::milliseconds(random % (backoff_.count() / 2 + 1));
  standby_refusals_ = standby ? standby_refusals_ + 1 : 0;
  if (standby && standby_refusals_ <= kQuickStandbyRetries) wait = std::chrono::milliseconds(100 + random % 101);
  return wait;
}

}  // namespace weft::api
