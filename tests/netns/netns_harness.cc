#include "tests/netns/netns_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <vector>

namespace weft::testing {
namespace {

std::atomic<int> counter{0};

std::string RunShell(const std::string& cmd, int* code) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *code = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Reads both pipes to EOF without deadlocking on either.
void Drain(int out_fd, int err_fd, std::string* out, std::string* err) {
  std::vector<pollfd> fds = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds.data(), fds.size(), 30000) <= 0) break;  // bounded: 30 s without output
    for (auto& p : fds) {
      if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(p.fd, buf, sizeof(buf));
      if (n <= 0) {
        p.fd = -1;
        --open_fds;
        continue;
      }
      (&p == &fds[0] ? out : err)->append(buf, n);
    }
  }
}

}  // namespace

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool IsRoot() { return geteuid() == 0; }

std::string MissingForRootTest(const std::string& tools) {
  if (!IsRoot()) return "needs root";
  std::string missing;
  std::istringstream in(tools);
  for (std::string tool; in >> tool;) {
    if (system(("command -v " + ShellQuote(tool) + " >/dev/null 2>&1").c_str()) != 0) missing += " " + tool;
  }
  return missing.empty() ? "" : "not installed:" + missing;
}

std::string WeftCniPath() {
  if (const char* p = std::getenv("WEFT_CNI"); p != nullptr) return p;
  return WEFT_CNI_BINARY;
}

TestNetns::TestNetns(const std::string& label) {
  name_ = "weftt-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" + label;
  int code = 0;
  RunShell("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up", &code);
  if (code != 0) {
    std::fprintf(stderr, "cannot create netns %s\n", name_.c_str());
    std::abort();
  }
}

TestNetns::~TestNetns() { Destroy(); }

void TestNetns::Destroy() {
  if (!alive_) return;
  alive_ = false;
  int code = 0;
  RunShell("ip netns del " + name_ + " 2>/dev/null", &code);
}

int TestNetns::Exec(const std::string& cmd, std::string* out) const {
  int code = 0;
  std::string o = RunShell("ip netns exec " + name_ + " sh -c " + ShellQuote(cmd) + " 2>&1", &code);
  if (out != nullptr) *out = o;
  return code;
}

nlohmann::json CniOutcome::json() const {
  return nlohmann::json::parse(out, nullptr, false);
}

CniOutcome RunCni(const TestNetns& node, const CniCall& call) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) std::abort();
  int ns_fd = open(node.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) std::abort();
  std::vector<std::string> env = {
      "CNI_COMMAND=" + call.command, "CNI_CONTAINERID=" + call.container_id,
      "CNI_NETNS=" + call.netns,     "CNI_IFNAME=" + call.ifname,
      "CNI_PATH=" + call.cni_path,   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  if (!call.args.empty()) env.push_back("CNI_ARGS=" + call.args);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string bin = call.binary.empty() ? WeftCniPath() : call.binary;
  char* argv[] = {bin.data(), nullptr};

  pid_t pid = fork();
  if (pid == 0) {
    if (setns(ns_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(bin.c_str(), argv, envp.data());
    _exit(127);
  }
  close(ns_fd);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  std::thread killer;
  if (call.kill_after) {
    killer = std::thread([pid, d = *call.kill_after] {
      std::this_thread::sleep_for(d);
      kill(pid, SIGKILL);
    });
  }
  // The config fits in the pipe buffer; a killed child just makes this write fail.
  signal(SIGPIPE, SIG_IGN);
  (void)!write(in[1], call.config.data(), call.config.size());
  close(in[1]);
  CniOutcome o;
  Drain(out[0], err[0], &o.out, &o.err);
  close(out[0]);
  close(err[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (killer.joinable()) killer.join();
  o.killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  o.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

}  // namespace weft::testing
