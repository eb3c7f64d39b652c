// Log lines of one kind at a bounded rate: a burst of `burst` lines, then one per
// `every_ms`; what is held back is counted and said on the next line of that kind
// ("(and 41 more like it)"). So 5,000 agents rejoining a new leader at once cost a few
// lines, and a refusal repeated every second by one agent one line in ten seconds. Pure:
// the caller passes the time (milliseconds, monotonic). Not thread-safe: guard it.
#ifndef WEFT_LIB_SYS_LOG_LIMITER_H_
#define WEFT_LIB_SYS_LOG_LIMITER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/sys/token_bucket.h"

namespace weft::sys {

class LogLimiter {
 public:
  LogLimiter(int burst, int64_t every_ms) : burst_(burst), every_ms_(every_ms) {}

  // The line to log now for `kind` (with the count held back since the last one), or
  // nullopt when it is held back.
  std::optional<std::string> Line(const std::string& kind, const std::string& line, int64_t now_ms) {
    auto it = kinds_.find(kind);
    if (it == kinds_.end()) {
      if (kinds_.size() >= kMaxKinds) kinds_.clear();  // bounded: kinds come from fixed reasons
      it = kinds_.emplace(kind, Kind{TokenBucket(1000.0 / static_cast<double>(every_ms_), burst_), 0}).first;
    }
    Kind& k = it->second;
    if (!k.bucket.Take(now_ms)) {
      ++k.held;
      return std::nullopt;
    }
    std::string out = line;
    if (k.held > 0) absl::StrAppend(&out, " (and ", k.held, " more like it)");
    k.held = 0;
    return out;
  }

 private:
  static constexpr size_t kMaxKinds = 64;
  struct Kind {
    TokenBucket bucket;
    uint64_t held;
  };
  int burst_;
  int64_t every_ms_;
  std::map<std::string, Kind> kinds_;
};

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_LOG_LIMITER_H_
