#include "lib/sys/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "absl/strings/string_view.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace weft::sys {

absl::StatusOr<Netns> Netns::Open(absl::string_view path) {
  std::string p(path);
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open netns ", p));
  struct statfs st;
  if (fstatfs(fd, &st) != 0 || (st.f_type != NSFS_MAGIC && st.f_type != PROC_SUPER_MAGIC)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(p, " is not a network namespace"));
  }
  return Netns(fd, std::move(p));
}

absl::StatusOr<Netns> Netns::Current() { return Open("/proc/thread-self/ns/net"); }

Netns::Netns(Netns&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

Netns& Netns::operator=(Netns&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<net::NlSocket> OpenNlSocketIn(const Netns& ns) {
  auto home = Netns::Current();
  if (!home.ok()) return home.status();
  if (setns(ns.fd(), CLONE_NEWNET) != 0) {
    return ErrnoStatus(errno, absl::StrCat("enter netns ", ns.path()));
  }
  absl::StatusOr<net::NlSocket> sock = net::NlSocket::Open();
  if (setns(home->fd(), CLONE_NEWNET) != 0) {
    // Continuing would configure the wrong namespace; nothing can recover this thread.
    std::perror("weft: cannot return to the original network namespace");
    std::abort();
  }
  return sock;
}

absl::Status RunInNetns(const Netns& ns, absl::AnyInvocable<absl::Status()> fn) {
  absl::Status result;
  std::thread worker([&] {
    if (setns(ns.fd(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, absl::StrCat("enter netns ", ns.path()));
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace weft::sys
