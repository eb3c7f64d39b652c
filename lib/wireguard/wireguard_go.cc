#include "lib/wireguard/wireguard_go.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/wireguard/uapi.h"

namespace weft::wireguard {
namespace {

bool Reap(pid_t pid, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  do {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

}  // namespace

absl::StatusOr<WireGuardGo> WireGuardGo::Start(const std::string& name, const Options& opts) {
  const std::string socket = absl::StrCat(opts.socket_dir, "/", name, ".sock");
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork wireguard-go");
  if (pid == 0) {
    if (opts.die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (opts.netns_fd >= 0 && setns(opts.netns_fd, CLONE_NEWNET) != 0) _exit(126);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      if (getenv("WEFT_WG_DEBUG") == nullptr) dup2(devnull, STDOUT_FILENO);
    }
    setenv("WG_PROCESS_FOREGROUND", "1", 1);
    // Weft picks the backend itself; wireguard-go must not refuse when a module exists.
    setenv("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1", 1);
    execlp(opts.binary.c_str(), opts.binary.c_str(), "-f", name.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  WireGuardGo proc(pid, name, socket);
  const auto deadline = std::chrono::steady_clock::now() + opts.ready_timeout;
  UapiDevice dev(name, opts.socket_dir);
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      proc.pid_ = -1;
      return absl::UnavailableError(absl::StrCat("wireguard-go for ", name, " exited (status ", status, ")"));
    }
    if (dev.Get().ok()) return proc;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat("wireguard-go for ", name, ": no UAPI socket at ", socket));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

WireGuardGo::WireGuardGo(WireGuardGo&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), name_(std::move(other.name_)), socket_(std::move(other.socket_)) {}

WireGuardGo::~WireGuardGo() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!Reap(pid_, std::chrono::milliseconds(2000))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(socket_.c_str());  // normally removed by wireguard-go itself
}

}  // namespace weft::wireguard
