#include "lib/sys/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/status/errno_status.h"
#include "absl/strings/string_view.h"

namespace weft::sys {

absl::StatusOr<std::string> ReadSysctl(absl::string_view key) {
  std::string path = absl::StrCat("/proc/sys/", key);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("read ", path));
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf));
  int e = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(e, absl::StrCat("read ", path));
  return std::string(absl::StripTrailingAsciiWhitespace(absl::string_view(buf, n)));
}

absl::Status EnsureSysctl(absl::string_view key, absl::string_view value) {
  if (auto cur = ReadSysctl(key); cur.ok() && *cur == value) return absl::OkStatus();
  std::string path = absl::StrCat("/proc/sys/", key);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
  ssize_t n = write(fd, value.data(), value.size());
  int e = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(e, absl::StrCat("write ", path));
  return absl::OkStatus();
}

}  // namespace weft::sys
