// A token bucket: `rate` events per second after a burst of `burst`. Pure: the caller
// passes the time (milliseconds on a monotonic clock), so tests need no clock.
#ifndef WEFT_LIB_SYS_TOKEN_BUCKET_H_
#define WEFT_LIB_SYS_TOKEN_BUCKET_H_

#include <algorithm>
#include <cstdint>

namespace weft::sys {

class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  // Takes one token if there is one at `now_ms`.
  bool Take(int64_t now_ms) {
    Refill(now_ms);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }
  // Milliseconds from `now_ms` until a token is there (0: now).
  int64_t WaitMs(int64_t now_ms) {
    Refill(now_ms);
    if (tokens_ >= 1) return 0;
    return static_cast<int64_t>((1 - tokens_) * 1000 / rate_) + 1;
  }

 private:
  void Refill(int64_t now_ms) {
    if (last_ms_ >= 0 && now_ms > last_ms_) tokens_ = std::min(burst_, tokens_ + (now_ms - last_ms_) * rate_ / 1000);
    if (now_ms > last_ms_) last_ms_ = now_ms;
  }

  double rate_;
  double burst_;
  double tokens_;
  int64_t last_ms_ = -1;
};

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_TOKEN_BUCKET_H_
