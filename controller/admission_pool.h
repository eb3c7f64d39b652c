// A fixed set of threads that run admission checks (TokenReview: a blocking call to the
// API server) off gRPC's threads, with bounded, fair queues: a burst of Hellos costs a
// queue slot each, never a thread each, and what does not fit is refused at once.
//
// Fair: each connection has a lane, served round-robin, so Hellos from one connection
// (a flood of forged tokens) wait behind each other, not in front of another agent's;
// and a lane holds at most `max_per_lane`.
#ifndef WEFT_CONTROLLER_ADMISSION_POOL_H_
#define WEFT_CONTROLLER_ADMISSION_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace weft::controller {

class AdmissionPool {
 public:
  AdmissionPool(size_t threads, size_t max_queued, size_t max_per_lane);
  // Runs what is queued, then joins the threads.
  ~AdmissionPool();
  AdmissionPool(const AdmissionPool&) = delete;
  AdmissionPool& operator=(const AdmissionPool&) = delete;

  // Queues `task` in `lane` (the connection it came on); false (and `task` not run) when
  // the pool or the lane is full.
  bool TrySubmit(const std::string& lane, std::function<void()> task);
  size_t queued() const;

 private:
  void Work();

  const size_t max_queued_;
  const size_t max_per_lane_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::deque<std::function<void()>>> lanes_;  // guarded by mu_
  std::deque<std::string> turn_;  // lanes with work, in the order they are served; mu_
  size_t queued_ = 0;             // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_ADMISSION_POOL_H_
