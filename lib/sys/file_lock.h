// An flock(2) held for a scope. The kernel drops it when the holder dies, SIGKILL
// included, so a crashed process never wedges the next one.
#ifndef WEFT_LIB_SYS_FILE_LOCK_H_
#define WEFT_LIB_SYS_FILE_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace weft::sys {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Creates `path` (0600) if needed and blocks until the lock is held.
  static absl::StatusOr<FileLock> Acquire(const std::string& path, Mode mode);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_FILE_LOCK_H_
