#include "lib/ipam/file_store.h"

#include <fstream>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"
#include "absl/strings/string_view.h"

namespace weft::ipam {
namespace {

absl::Status MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(absl::StrCat("create IPAM directory ", prefix, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status Flock(int fd, int op, const std::string& dir) {
  while (flock(fd, op) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, absl::StrCat("lock IPAM store ", dir));
  }
  return absl::OkStatus();
}

std::string KernelBootId() {
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "unknown";
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  std::string id(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id.empty() ? "unknown" : id;
}

}  // namespace

absl::StatusOr<FileStore> FileStore::Open(absl::string_view dir, std::string boot_id) {
  if (boot_id.empty()) boot_id = KernelBootId();
  std::string d(dir);
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  RETURN_IF_ERROR(MakeDirs(d));
  std::string lock = absl::StrCat(d, "/lock");
  int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", lock));
  return FileStore(std::move(d), fd, absl::StrCat("weft-ipam 1 boot=", boot_id, "\n"));
}

FileStore::FileStore(FileStore&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(std::exchange(other.lock_fd_, -1)),
      header_(std::move(other.header_)) {}

FileStore::~FileStore() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

absl::StatusOr<std::string> FileStore::ReadText() const {
  std::string path = absl::StrCat(dir_, "/state");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoStatus(errno, absl::StrCat("open ", path));
  }
  absl::Cleanup closer = [fd] { close(fd); };
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", path));
    if (n == 0) break;
    text.append(buf, n);
  }
  return text;
}

absl::Status FileStore::WriteText(const std::string& text) const {
  std::string tmp = absl::StrCat(dir_, "/state.tmp");
  std::string path = absl::StrCat(dir_, "/state");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", tmp));
  absl::Cleanup closer = [fd] { close(fd); };
  for (size_t off = 0; off < text.size();) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", tmp));
    off += static_cast<size_t>(n);
  }
  // No fsync: rename(2) alone makes the switch atomic for every reader and for any
  // process crash, and the state only has to outlive processes, not the boot (see
  // Pool::Parse on boot IDs), because the pods it describes die with the boot too.
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("rename ", tmp));
  return absl::OkStatus();
}

absl::StatusOr<Pool> FileStore::Load(const std::string& text, bool* recovered) const {
  if (text.compare(0, header_.size(), header_) != 0) return Pool();
  const absl::string_view body = absl::string_view(text).substr(header_.size());
  auto pool = Pool::Parse(body);
  if (pool.ok() || !absl::IsDataLoss(pool.status())) return pool;
  // Corrupt anyway (a bug, a disk, a hand edit): recovered rather than failing every
  // later ADD and DEL on the node; the next update writes it clean, the text goes aside.
  if (recovered != nullptr) *recovered = true;
  int dropped = 0;
  return Pool::Recover(body, &dropped);
}

absl::Status FileStore::Update(absl::FunctionRef<absl::Status(Pool&)> fn) {
  RETURN_IF_ERROR(Flock(lock_fd_, LOCK_EX, dir_));
  absl::Cleanup unlock = [this] { flock(lock_fd_, LOCK_UN); };
  ASSIGN_OR_RETURN(std::string before, ReadText());
  bool recovered = false;
  ASSIGN_OR_RETURN(Pool pool, Load(before, &recovered));
  const std::string unchanged = pool.Serialize();
  RETURN_IF_ERROR(fn(pool));
  std::string after = pool.Serialize();
  if (!recovered && after == unchanged && before.compare(0, header_.size(), header_) == 0) return absl::OkStatus();
  if (recovered) {
    const std::string aside = dir_ + "/state.corrupt";
    std::ofstream(aside, std::ios::trunc) << before;  // best effort: for whoever investigates
  }
  return WriteText(header_ + after);
}

absl::StatusOr<Pool> FileStore::Read() {
  RETURN_IF_ERROR(Flock(lock_fd_, LOCK_SH, dir_));
  absl::Cleanup unlock = [this] { flock(lock_fd_, LOCK_UN); };
  ASSIGN_OR_RETURN(std::string text, ReadText());
  return Load(text, nullptr);
}

}  // namespace weft::ipam
