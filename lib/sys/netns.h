// Network namespaces without ever leaving a thread in the wrong one.
//
// setns(2) moves only the calling thread. Two safe patterns are offered: open a netlink
// socket inside a namespace (the socket stays bound to it; the thread returns at once),
// or run a function on a short-lived dedicated thread that enters the namespace and dies.
#ifndef WEFT_LIB_SYS_NETNS_H_
#define WEFT_LIB_SYS_NETNS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/nl_socket.h"

namespace weft::sys {

// An open network-namespace file descriptor.
class Netns {
 public:
  // Opens a namespace by path (/var/run/netns/x, /proc/<pid>/ns/net). NotFound if the
  // path does not exist; InvalidArgument if it is not a network namespace.
  static absl::StatusOr<Netns> Open(absl::string_view path);
  // The calling thread's current namespace.
  static absl::StatusOr<Netns> Current();

  Netns(Netns&& other) noexcept;
  Netns& operator=(Netns&& other) noexcept;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  Netns(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// Opens an rtnetlink socket that lives in `ns`. The calling thread enters `ns` only for
// the socket() call; if it cannot return to its own namespace the process aborts rather
// than run on in the wrong one.
absl::StatusOr<net::NlSocket> OpenNlSocketIn(const Netns& ns);

// Runs `fn` on a new thread that has entered `ns`; the thread exits when `fn` returns.
absl::Status RunInNetns(const Netns& ns, absl::AnyInvocable<absl::Status()> fn);

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_NETNS_H_
