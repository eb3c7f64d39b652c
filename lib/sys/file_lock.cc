#include "lib/sys/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"

namespace weft::sys {

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path, Mode mode) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open lock ", path));
  const int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
  while (flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return ErrnoStatus(e, absl::StrCat("lock ", path));
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace weft::sys
