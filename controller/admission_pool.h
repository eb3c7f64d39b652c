// A fixed set of threads that run admission checks (TokenReview: a blocking call to the
// API server) off gRPC's threads, with a bounded queue: a burst of Hellos costs a queue
// slot each, never a thread each, and what does not fit is refused at once.
#ifndef WEFT_CONTROLLER_ADMISSION_POOL_H_
#define WEFT_CONTROLLER_ADMISSION_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace weft::controller {

class AdmissionPool {
 public:
  AdmissionPool(size_t threads, size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~AdmissionPool();
  AdmissionPool(const AdmissionPool&) = delete;
  AdmissionPool& operator=(const AdmissionPool&) = delete;

  // Queues `task`; false (and `task` not run) when the queue is full.
  bool TrySubmit(std::function<void()> task);
  size_t queued() const;

 private:
  void Work();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_ADMISSION_POOL_H_
