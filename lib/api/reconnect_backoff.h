// When an agent connects to the controller again after its stream ended (pure: the
// caller gives the randomness, so a bench can run thousands and a test can step it).
//
// A session that lasted (10 s) is a fresh start; a refusal or a failed connection retries
// soon: 100 ms doubling to 500 ms, each wait jittered down by up to half, so that a
// cluster's agents do not come back in lockstep after their controller restarts. A
// refusal by a replica that does not lead (standby) retries in 100-200 ms, for as long as
// a takeover may take (40 times); after that, as after a failure.
#ifndef WEFT_LIB_API_RECONNECT_BACKOFF_H_
#define WEFT_LIB_API_RECONNECT_BACKOFF_H_

#include <chrono>
#include <cstdint>

namespace weft::api {

class ReconnectBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{100};
  static constexpr std::chrono::milliseconds kMax{500};
  static constexpr std::chrono::milliseconds kFreshAfter{10000};
  static constexpr int kQuickStandbyRetries = 40;

  // The wait before the next attempt, after a session (or attempt) that lasted `lasted`
  // and ended with a standby refusal or not; `random` is any uniformly random number.
  std::chrono::milliseconds Next(std::chrono::milliseconds lasted, bool standby, uint32_t random);

 private:
  std::chrono::milliseconds backoff_{0};
  int standby_refusals_ = 0;
};

}  // namespace weft::api

#endif  // WEFT_LIB_API_RECONNECT_BACKOFF_H_
