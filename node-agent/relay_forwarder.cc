#include "lib/sys/stop_signals.h"
#include "node-agent/relay_forwarder.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/flags/flags.h"
#include "lib/status/status_macros.h"
#include "lib/sys/steady_ms.h"
#include "node-agent/forwarder_client.h"
#include "node-agent/forwarder_protocol.h"
#include "node-agent/relay_client.h"

namespace weft::agent {
namespace {

void Log(const std::string& s) { std::fprintf(stderr, "weft-agent relay-forwarder: %s\n", s.c_str()); }

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The listening socket at `path`, replacing whatever file was there (an older forwarder
// that is stopping keeps its connected agent; new agents reach this one).
absl::StatusOr<int> Listen(const std::string& path) {
  RETURN_IF_ERROR(UnixAddress(path).status());
  // Bound under a temporary name, made private, then renamed over the old one: there is
  // never a moment without a socket, nor one anybody else may connect to.
  const std::string tmp = absl::StrCat(path, ".", getpid());
  ASSIGN_OR_RETURN(sockaddr_un t, UnixAddress(tmp));
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  unlink(tmp.c_str());
  const mode_t old = umask(0077);
  const int b = bind(fd, reinterpret_cast<sockaddr*>(&t), sizeof(t));
  umask(old);
  if (b != 0 || listen(fd, 8) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno(absl::StrCat("socket ", path));
    close(fd);
    unlink(tmp.c_str());
    return s;
  }
  return fd;
}

class Forwarder {
 public:
  explicit Forwarder(bool persistent) : persistent_(persistent) {}
  // One request, its reply; `stop` set when the agent asked us to exit.
  v1::ForwarderReply Handle(const v1::ForwarderRequest& q, bool* stop) {
    switch (q.op_case()) {
      case v1::ForwarderRequest::kStart: {
        if (relay_) return ErrorReply(absl::FailedPreconditionError("already allocated on " + relay_->server().ToString()));
        auto o = StartOptionsOf(q.start());
        if (!o.ok()) return ErrorReply(o.status());
        auto c = RelayClient::Start(*o);
        if (!c.ok()) return ErrorReply(c.status());
        relay_ = *std::move(c);  // the agent logs the allocation
        return ReplyOf(State());
      }
      case v1::ForwarderRequest::kProxyFor: {
        if (!relay_) return ErrorReply(absl::FailedPreconditionError("no allocation"));
        auto peer = PeerOf(q.proxy_for());
        if (!peer.ok()) return ErrorReply(peer.status());
        auto proxy = relay_->ProxyFor(*peer);
        if (!proxy.ok()) return ErrorReply(proxy.status());
        v1::ForwarderReply r = ReplyOf(State());
        r.set_proxy(proxy->ToString());
        return r;
      }
      case v1::ForwarderRequest::kStatus:
        return ReplyOf(State());
      case v1::ForwarderRequest::kStop:
        *stop = !persistent_;
        if (relay_) Log(absl::StrCat("relay ", relay_->server().ToString(), ": releasing the allocation"));
        relay_.reset();
        return ReplyOf(State());
      case v1::ForwarderRequest::OP_NOT_SET:
        break;
    }
    return ErrorReply(absl::InvalidArgumentError("an empty request"));
  }

  void Release() { relay_.reset(); }

  ForwarderState State() const {
    ForwarderState s;
    s.persistent = persistent_;
    if (!relay_) return s;
    s.allocated = true;
    s.relayed = relay_->relayed();
    s.server = relay_->server();
    s.tcp = relay_->tcp();
    s.alive = relay_->alive();
    s.stats = relay_->stats();
    return s;
  }

 private:
  const bool persistent_;
  std::unique_ptr<RelayClient> relay_;
};

}  // namespace

absl::Status RunRelayForwarder(const ForwarderOptions& opts, std::stop_token stop) {
  absl::StatusOr<int> listener = Listen(opts.socket_path);
  if (!listener.ok()) return listener.status();
  struct stat mine {};
  stat(opts.socket_path.c_str(), &mine);  // the inode of our name, to remove only ours
  Forwarder fwd(opts.persistent);
  std::vector<int> agents;
  int64_t last_agent_ms = sys::SteadyMs();
  bool stopping = false;
  std::vector<uint8_t> buf(65536);
  while (!stopping && !stop.stop_requested()) {
    std::vector<pollfd> fds{{*listener, POLLIN, 0}};
    for (int a : agents) fds.push_back({a, POLLIN, 0});
    poll(fds.data(), fds.size(), 200);
    if (fds[0].revents & POLLIN) {
      int a = accept4(*listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      ucred cred{};
      socklen_t len = sizeof(cred);
      if (a >= 0 && (getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid())) {
        Log(absl::StrCat("refused a connection from uid ", cred.uid));
        close(a);
      } else if (a >= 0 && agents.size() >= 8) {
        close(a);  // one agent at a time in practice; a bound all the same
      } else if (a >= 0) {
        agents.push_back(a);
      }
    }
    for (size_t k = 1; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      const int a = fds[k].fd;
      ssize_t n = recv(a, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      v1::ForwarderRequest q;
      if (n <= 0 || !q.ParseFromArray(buf.data(), static_cast<int>(n))) {
        if (n > 0) Log("a malformed request: connection closed");
        close(a);
        std::erase(agents, a);
        continue;
      }
      const std::string reply = fwd.Handle(q, &stopping).SerializeAsString();
      send(a, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    const int64_t now = sys::SteadyMs();
    if (!agents.empty()) {
      last_agent_ms = now;
    } else if (!opts.persistent && now - last_agent_ms > opts.idle_exit.count()) {
      Log(absl::StrCat("no agent for ", opts.idle_exit.count() / 1000, " s: releasing the allocation and exiting"));
      break;
    }
  }
  fwd.Release();
  for (int a : agents) close(a);
  close(*listener);
  struct stat now {};
  if (stat(opts.socket_path.c_str(), &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev) {
    unlink(opts.socket_path.c_str());
  }
  return absl::OkStatus();
}

int RelayForwarderMain(int argc, char** argv) {
  ForwarderOptions o;
  int idle_s = 60;
  flags::FlagSet f("weft-agent relay-forwarder",
                   "weft-agent relay-forwarder --socket PATH [--idle-exit-s N | --persistent]");
  f.String("socket", &o.socket_path, "PATH", "the unix socket the agent talks to (required)")
      .Int("idle-exit-s", &idle_s, 1, 86400, "exit (releasing the allocation) after this long without an agent")
      .Bool("persistent", &o.persistent,
            "a sidecar's: never exit on its own; a stop releases the allocation and waits for the next");
  bool check = false;
  f.Bool("check", &check, "ask the forwarder at --socket whether it serves (exit 0) and what it holds: a probe");
  if (auto exit_code = flags::ParseForMain(f, argc, argv)) return *exit_code;
  if (o.socket_path.empty()) return flags::UsageError(f, "--socket is required");
  if (check) {
    auto c = ForwarderClient::Connect(o.socket_path);
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    const ForwarderState& st = (*c)->state();
    std::printf("%s\n", st.allocated ? absl::StrCat("relay ", st.server.ToString(), st.tcp ? " (TCP)" : "", ", allocated ",
                                                     st.relayed.ToString(), st.alive ? "" : ", not answering").c_str()
                                      : "serving, no allocation");
    return 0;
  }
  o.idle_exit = std::chrono::seconds(idle_s);
  // SIGTERM (the pod goes) and SIGINT: the allocation released, then exit.
  const sigset_t stop_signals = sys::BlockStopSignals();
  std::stop_source stop;
  std::jthread waiter([&stop, stop_signals](std::stop_token st) {
    while (!st.stop_requested()) {
      timespec tick{0, 200 * 1000 * 1000};
      if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) {
        stop.request_stop();
        return;
      }
    }
  });
  if (absl::Status s = RunRelayForwarder(o, stop.get_token()); !s.ok()) {
    Log(s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace weft::agent
