// Work done on a thread of its own whenever asked, once per burst of asks: asks that
// arrive while the work runs make one more run, not one each. The agent reconciles its
// WireGuard device and routes this way, so a report that brings N-1 directives costs one
// or two reconciles, not N-1 (each a device write and a route sync).
#ifndef WEFT_LIB_SYS_COALESCER_H_
#define WEFT_LIB_SYS_COALESCER_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace weft::sys {

class Coalescer {
 public:
  // `work(flags)` gets the OR of the flags of every ask it answers.
  explicit Coalescer(std::function<void(uint32_t flags)> work);
  // Waits for a run under way; asks not yet answered are dropped.
  ~Coalescer();
  Coalescer(const Coalescer&) = delete;
  Coalescer& operator=(const Coalescer&) = delete;

  // Asks for a run (never blocks on the work).
  void Ask(uint32_t flags = 0);
  // Returns once every ask made before the call has been answered by a run (for tests and
  // orderly shutdown); false if the coalescer stopped first.
  bool Drain();
  uint64_t runs() const;

 private:
  void Loop();

  std::function<void(uint32_t)> work_;
  mutable absl::Mutex mu_;
  bool asked_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t flags_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t asks_ ABSL_GUARDED_BY(mu_) = 0;      // asks made
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;  // asks made before the last run began
  uint64_t runs_ ABSL_GUARDED_BY(mu_) = 0;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_COALESCER_H_
