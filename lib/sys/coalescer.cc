#include "lib/sys/coalescer.h"

#include <utility>

namespace weft::sys {

Coalescer::Coalescer(std::function<void(uint32_t)> work) : work_(std::move(work)) {
  thread_ = std::thread([this] { Loop(); });
}

Coalescer::~Coalescer() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void Coalescer::Ask(uint32_t flags) {
  absl::MutexLock l(&mu_);
  asked_ = true;
  flags_ |= flags;
  ++asks_;
}

bool Coalescer::Drain() {
  absl::MutexLock l(&mu_);
  const uint64_t upto = asks_;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || (answered_ >= upto && !running_); };
  mu_.Await(absl::Condition(&done));
  return answered_ >= upto;
}

uint64_t Coalescer::runs() const {
  absl::MutexLock l(&mu_);
  return runs_;
}

void Coalescer::Loop() {
  for (;;) {
    uint32_t flags = 0;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return asked_ || stop_; };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      flags = std::exchange(flags_, 0);
      asked_ = false;
      answered_ = asks_;
      running_ = true;
      ++runs_;
    }
    work_(flags);
    absl::MutexLock l(&mu_);
    running_ = false;
  }
}

}  // namespace weft::sys
