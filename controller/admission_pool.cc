#include "controller/admission_pool.h"

#include <utility>

namespace weft::controller {

AdmissionPool::AdmissionPool(size_t threads, size_t max_queued, size_t max_per_lane)
    : max_queued_(max_queued), max_per_lane_(max_per_lane) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

AdmissionPool::~AdmissionPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool AdmissionPool::TrySubmit(const std::string& lane, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || queued_ >= max_queued_) return false;
    auto& q = lanes_[lane];
    if (q.size() >= max_per_lane_) return false;
    if (q.empty()) turn_.push_back(lane);
    q.push_back(std::move(task));
    ++queued_;
  }
  cv_.notify_one();
  return true;
}

size_t AdmissionPool::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return queued_;
}

void AdmissionPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || queued_ > 0; });
      if (queued_ == 0) return;  // stopping, and nothing left to run
      const std::string lane = std::move(turn_.front());
      turn_.pop_front();
      auto it = lanes_.find(lane);
      task = std::move(it->second.front());
      it->second.pop_front();
      --queued_;
      if (it->second.empty()) {
        lanes_.erase(it);
      } else {
        turn_.push_back(lane);  // its next task after every other lane's
      }
    }
    task();
  }
}

}  // namespace weft::controller
