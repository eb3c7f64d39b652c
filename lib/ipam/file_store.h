// A Pool kept in a file: every change under an exclusive flock, written atomically.
//
// Crash safety: the state file is replaced with rename(2) after the new content is on
// disk, so a process killed at any instant leaves either the old or the new state, never
// a torn one. The lock is an flock on a separate file, released by the kernel when the
// holder dies, so a SIGKILLed plugin never wedges the next one.
#ifndef WEFT_LIB_IPAM_FILE_STORE_H_
#define WEFT_LIB_IPAM_FILE_STORE_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/ipam/pool.h"

namespace weft::ipam {

class FileStore {
 public:
  // Uses (and creates, mode 0700) directory `dir`. Unavailable if it cannot be created.
  static absl::StatusOr<FileStore> Open(absl::string_view dir);

  FileStore(FileStore&& other) noexcept;
  FileStore& operator=(FileStore&&) = delete;
  FileStore(const FileStore&) = delete;
  ~FileStore();

  // Runs `fn` on the current pool with the exclusive lock held. If `fn` returns OK the
  // pool is written back (only when it changed); otherwise nothing is written and fn's
  // status is returned.
  absl::Status Update(absl::FunctionRef<absl::Status(Pool&)> fn);
  // A consistent snapshot, read under a shared lock.
  absl::StatusOr<Pool> Read();

  const std::string& dir() const { return dir_; }

 private:
  FileStore(std::string dir, int lock_fd) : dir_(std::move(dir)), lock_fd_(lock_fd) {}
  absl::StatusOr<std::string> ReadText() const;
  absl::Status WriteText(const std::string& text) const;

  std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace weft::ipam

#endif  // WEFT_LIB_IPAM_FILE_STORE_H_
