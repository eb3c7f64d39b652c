#include "node-agent/forwarder_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/status/status_macros.h"
#include "lib/sys/steady_ms.h"

namespace weft::agent {
namespace {

absl::StatusOr<int> Dial(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un a, UnixAddress(path));
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  // Bounded: a unix connect waits while the listener's backlog is full (a forwarder that
  // does not accept), and a send while its buffer is; 2 s each, never forever.
  const timeval bound{.tv_sec = 2, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    const int e = errno;
    close(fd);
    if (e == ENOENT || e == ECONNREFUSED) return absl::NotFoundError(absl::StrCat("no relay forwarder at ", path));
    if (e == EAGAIN) return absl::UnavailableError(absl::StrCat("relay forwarder at ", path, ": busy (no accept in 2 s)"));
    return absl::UnavailableError(absl::StrCat("relay forwarder at ", path, ": ", std::strerror(e)));
  }
  return fd;
}

// `binary relay-forwarder --socket path` in a session of its own (no signal to this
// process's group reaches it). Its pid: this process reaps it when it stops it; if this
// process dies first, init (or a subreaper) does.
absl::StatusOr<pid_t> Spawn(const std::string& binary, const std::string& path, int idle_exit_s) {
  std::vector<std::string> args{"weft-agent", "relay-forwarder", "--socket", path, "--idle-exit-s",
                                std::to_string(idle_exit_s)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::UnavailableError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {  // only async-signal-safe calls from here to exec
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the agent blocks SIGTERM (sigwait); not its forwarder
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    close_range(3, ~0U, 0);  // none of the agent's sockets (netlink, raw, gRPC) go with it
    execv(binary.c_str(), argv.data());  // stdout and stderr: the agent's log
    _exit(127);
  }
  return pid;
}

// Reaps `pid` once it exited (bounded: `ms`); false if it still runs.
bool Reap(pid_t pid, int ms) {
  for (int i = 0; i <= ms / 10; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) != 0) return true;  // reaped, or not our child
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(a.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\": empty or too long"));
  }
  path.copy(a.sun_path, path.size());
  return a;
}

absl::StatusOr<std::unique_ptr<ForwarderClient>> ForwarderClient::Connect(const std::string& socket_path) {
  ASSIGN_OR_RETURN(int fd, Dial(socket_path));
  std::unique_ptr<ForwarderClient> c(new ForwarderClient(fd, {}));
  v1::ForwarderRequest q;
  q.set_status(true);
  ASSIGN_OR_RETURN(v1::ForwarderReply r, c->Call(q, std::chrono::seconds(2)));
  ASSIGN_OR_RETURN(c->state_, StateOf(r));
  return c;
}

absl::StatusOr<std::unique_ptr<ForwarderClient>> ForwarderClient::Allocate(const std::string& socket_path,
                                                                           const RelayClient::Options& opts,
                                                                           const LaunchOptions& launch) {
  absl::StatusOr<std::unique_ptr<ForwarderClient>> c = Connect(socket_path);
  if (c.ok() && (*c)->state_.allocated) {
    const bool persistent = (*c)->state_.persistent;
    (void)(*c)->Stop();  // a stale allocation: ours is the one made now
    c = persistent ? Connect(socket_path) : absl::NotFoundError("stopped");
  }
  if (!c.ok() && !launch.launch) {
    return absl::UnavailableError(absl::StrCat("no relay forwarder at ", socket_path, " (its sidecar): ",
                                               c.status().message()));
  }
  if (!c.ok()) {
    ASSIGN_OR_RETURN(const pid_t pid, Spawn(launch.binary, socket_path, launch.idle_exit_s));
    // Bounded: 2 s for the new forwarder's socket. A stale file refuses (NotFound) until
    // the new one renames its socket over it.
    for (int i = 0; i < 200; ++i) {
      c = Connect(socket_path);
      if (c.ok() && !(*c)->state_.allocated) break;
      if (c.ok()) c = absl::AlreadyExistsError(absl::StrCat("another relay forwarder holds ", socket_path));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!c.ok()) {
      kill(pid, SIGKILL);
      Reap(pid, 1000);
      return c.status();
    }
    (*c)->pid_ = pid;
  }
  v1::ForwarderRequest q;
  *q.mutable_start() = StartOf(opts);
  // The allocation takes at most about 3 s (RelayClient::Start).
  absl::StatusOr<v1::ForwarderReply> r = (*c)->Call(q, std::chrono::seconds(10));
  absl::StatusOr<ForwarderState> s = r.ok() ? StateOf(*r) : r.status();
  if (s.ok() && !s->allocated) s = absl::InternalError("relay forwarder: started, but no allocation");
  if (!s.ok()) {
    (void)(*c)->Stop();
    return s.status();
  }
  (*c)->state_ = *s;
  return c;
}

ForwarderClient::~ForwarderClient() {
  if (fd_ >= 0) close(fd_);
  if (pid_ > 0) waitpid(pid_, nullptr, WNOHANG);
}

absl::StatusOr<v1::ForwarderReply> ForwarderClient::Call(const v1::ForwarderRequest& q,
                                                          std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> l(mu_);
  if (fd_ < 0) return absl::UnavailableError("relay forwarder: connection closed");
  auto fail = [this](absl::string_view why) {
    close(fd_);
    fd_ = -1;
    return absl::UnavailableError(absl::StrCat("relay forwarder: ", why));
  };
  const std::string out = q.SerializeAsString();
  if (send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    return fail(std::strerror(errno));
  }
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return fail("no answer");
  std::vector<uint8_t> buf(4096);
  const ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
  if (n <= 0) return fail("gone");
  v1::ForwarderReply r;
  if (static_cast<size_t>(n) > buf.size() || !r.ParseFromArray(buf.data(), static_cast<int>(n))) {
    return fail("a malformed reply");
  }
  return r;
}

absl::StatusOr<net::Endpoint> ForwarderClient::ProxyFor(const net::Endpoint& peer_relayed) {
  v1::ForwarderRequest q;
  q.set_proxy_for(peer_relayed.ToString());
  ASSIGN_OR_RETURN(v1::ForwarderReply r, Call(q, std::chrono::seconds(1)));
  return ProxyOf(r);
}

bool ForwarderClient::alive() {
  v1::ForwarderRequest q;
  q.set_status(true);
  absl::StatusOr<v1::ForwarderReply> r = Call(q, std::chrono::seconds(1));
  if (!r.ok()) return false;
  absl::StatusOr<ForwarderState> s = StateOf(*r);
  if (!s.ok() || !s->allocated) return false;
  // A forwarder that holds another allocation than the one we know is not ours to trust.
  return s->alive && s->relayed == state_.relayed && s->server == state_.server;
}

absl::Status ForwarderClient::Stop() {
  v1::ForwarderRequest q;
  q.set_stop(true);
  absl::StatusOr<v1::ForwarderReply> r = Call(q, std::chrono::seconds(2));
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  if (pid_ > 0 && Reap(pid_, 2000)) pid_ = -1;
  return r.status();
}

}  // namespace weft::agent

