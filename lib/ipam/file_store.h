// A Pool kept in a file: every change under an exclusive flock, written atomically.
//
// The file's first line names the boot it was written in ("weft-ipam 1 boot=<id>"). A
// state from another boot (or a first line a power loss left torn) describes pods that
// no longer exist, so it is read as an empty pool: after a reboot no address stays
// leaked waiting for a GC, as happens with stores that outlive their pods.
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
  // `boot_id` defaults to the kernel's (/proc/sys/kernel/random/boot_id).
  static absl::StatusOr<FileStore> Open(absl::string_view dir, std::string boot_id = "");

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
  FileStore(std::string dir, int lock_fd, std::string header)
      : dir_(std::move(dir)), lock_fd_(lock_fd), header_(std::move(header)) {}
  absl::StatusOr<std::string> ReadText() const;
  // The pool in `text`; an empty one if `text` is from another boot; a recovered one
  // (Pool::Recover, `*recovered` set) if it is corrupt.
  absl::StatusOr<Pool> Load(const std::string& text, bool* recovered) const;
  absl::Status WriteText(const std::string& text) const;

  std::string dir_;
  int lock_fd_ = -1;
  std::string header_;  // "weft-ipam 1 boot=<id>\n"
};

}  // namespace weft::ipam

#endif  // WEFT_LIB_IPAM_FILE_STORE_H_
