// bench/controller: N agents connected to one weft-controller (a separate process, over
// loopback TCP); one node's endpoint changes; how long until every agent has the delta,
// and what the controller spends (CPU, RSS).
//
//   build/bench/controller/controller_bench --controller build/controller/weft-controller --agents 1000
//
// The controller starts from a state file holding the N nodes (as after a restart), and
// the agents resume at its version, so the bench measures the fan-out of one change, not
// the O(N^2) bootstrap of a whole cluster.
//
// --storm: a reconnect storm instead. The controller serves TLS, every agent has its own
// connection (as nodes do), and once all are in, the controller is killed (SIGKILL) and
// started again: every agent comes back the way weft-agent does (a new connection per
// attempt, api::ReconnectBackoff's jittered waits, TLS handshake, admission, resume).
// Reports how long until all are back, and the controller's CPU and RSS meanwhile.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "weft/v1/weft.grpc.pb.h"
#include "lib/api/reconnect_backoff.h"
#include "lib/flags/flags.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  int welcomed = 0;
  int done = 0;
  uint64_t target_version = 0;
  std::vector<double> latency_ms;
  Clock::time_point changed_at;
  std::string epoch;                       // from the first Welcome: agents resume in it
  Clock::time_point t0;                    // the storm's start
  std::vector<double> welcome_ms;          // when each Welcome arrived, after t0
  std::vector<int> failed;                 // agents whose stream ended with an error, to reconnect
};

class BenchAgent : public grpc::ClientBidiReactor<weft::v1::AgentMessage, weft::v1::ControllerMessage> {
 public:
  BenchAgent(weft::v1::EndpointService::Stub* stub, const std::string& node, uint64_t resume, const std::string& token,
             Shared* shared, int id = -1, const std::string& epoch = "", bool wait_for_ready = true)
      : shared_(shared), id_(id) {
    hello_.mutable_hello()->set_node(node);
    hello_.mutable_hello()->set_token(token);
    hello_.mutable_hello()->set_resume_version(resume);
    hello_.mutable_hello()->set_resume_epoch(epoch);
    ctx_.set_wait_for_ready(wait_for_ready);  // the controller may still be starting
    stub->async()->Connect(&ctx_, this);
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void Send(const weft::v1::AgentMessage& m) {
    out_ = m;
    StartWrite(&out_);
  }
  void Cancel() { ctx_.TryCancel(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.has_welcome()) {
      std::lock_guard<std::mutex> l(shared_->mu);
      ++shared_->welcomed;
      shared_->welcome_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - shared_->t0).count());
      if (shared_->epoch.empty()) shared_->epoch = in_.welcome().epoch();
      shared_->cv.notify_all();
    } else if (in_.has_delta() && !got_) {
      std::lock_guard<std::mutex> l(shared_->mu);
      if (shared_->target_version != 0 && in_.delta().version() >= shared_->target_version) {
        got_ = true;
        shared_->latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - shared_->changed_at).count());
        shared_->cv.notify_all();
      }
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool) override {}
  void OnDone(const grpc::Status& s) override {
    if (!s.ok() && getenv("WEFT_BENCH_DEBUG")) std::fprintf(stderr, "stream ended: %s\n", s.error_message().c_str());
    std::lock_guard<std::mutex> l(shared_->mu);
    ++shared_->done;
    if (!s.ok() && id_ >= 0) shared_->failed.push_back(id_);
    shared_->cv.notify_all();
  }

 private:
  grpc::ClientContext ctx_;
  weft::v1::AgentMessage hello_, out_;
  weft::v1::ControllerMessage in_;
  Shared* shared_;
  int id_;
  bool got_ = false;
};

weft::v1::NodeInfo Node(int i, uint32_t port) {
  weft::v1::NodeInfo n;
  n.set_name(absl::StrCat("node-", i));
  std::string key(32, 'b');  // one key per node (the controller refuses a key twice)
  for (int b = 0; b < 4; ++b) key[b] = static_cast<char>((i >> (8 * b)) & 0xff);
  n.set_wireguard_public_key(key);
  n.add_pod_cidrs(absl::StrCat("10.", 64 + i / 256, ".", i % 256, ".0/24"));
  auto* c = n.add_candidates();
  c->set_type(weft::v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip(absl::StrCat("198.51.100.", i % 250 + 1));
  c->mutable_endpoint()->set_port(port);
  n.mutable_nat()->set_mapping(weft::v1::NAT_MAPPING_ENDPOINT_INDEPENDENT);
  n.mutable_nat()->set_public_ip(c->endpoint().ip());
  *n.mutable_nat()->mutable_reflexive() = c->endpoint();
  return n;
}

long RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  std::vector<std::string> f;
  std::string cur;
  for (size_t i = p + 2; i < s.size(); ++i) {
    if (s[i] == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  // utime and stime are fields 14 and 15; f[0] is field 3.
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / sysconf(_SC_CLK_TCK);
}

// weft-controller on `addr`, standalone, from the state file in `dir`: TLS with `dir`'s
// c.crt and c.key, or insecure.
pid_t StartController(const std::string& bin, const std::string& addr, const std::string& dir, bool tls) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<std::string> args = {bin, "--listen", addr, "--join-token-file", dir + "/token", "--cluster-cidr",
                                     "10.0.0.0/8", "--node-prefix", "24", "--state-file", dir + "/state"};
    if (tls) {
      args.insert(args.end(), {"--tls-cert", dir + "/c.crt", "--tls-key", dir + "/c.key"});
    } else {
      args.push_back("--insecure");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// A CA and a certificate for 127.0.0.1 in `dir` (ca.crt, c.crt, c.key); the CA's PEM.
std::string MakeTls(const std::string& dir) {
  const std::string cmd = absl::StrCat(
      "(cd ", dir, " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt ",
      "-days 1 -subj /CN=bench-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key ",
      "-out c.csr -subj /CN=weft-controller && printf 'subjectAltName=IP:127.0.0.1\\n' > ext && openssl x509 -req ",
      "-in c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out c.crt -days 1 -extfile ext) >/dev/null 2>&1");
  if (system(cmd.c_str()) != 0) return "";
  std::ifstream in(dir + "/ca.crt");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The storm: N agents on their own TLS connections; the controller killed and restarted;
// every agent back as weft-agent comes back. Returns the exit status.
int Storm(const std::string& controller_bin, int n, const std::string& dir, const std::string& token, uint64_t version) {
  const std::string ca = MakeTls(dir);
  if (ca.empty()) {
    std::fprintf(stderr, "openssl failed\n");
    return 1;
  }
  const std::string addr = absl::StrCat("127.0.0.1:", 17443 + getpid() % 1000);
  auto start = [&]() { return StartController(controller_bin, addr, dir, /*tls=*/true); };
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = ca;
  const auto creds = grpc::SslCredentials(so);
  // One connection per agent and per attempt, as weft-agent (its own subchannel pool).
  auto new_stub = [&]() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return weft::v1::EndpointService::NewStub(grpc::CreateCustomChannel(addr, creds, args));
  };
  pid_t ctl = start();
  Shared shared;
  std::vector<std::unique_ptr<weft::v1::EndpointService::Stub>> stubs(n);
  std::vector<std::unique_ptr<BenchAgent>> agents(n), graveyard;
  std::vector<weft::api::ReconnectBackoff> backoff(n);
  std::mt19937 rng(42);
  long attempts = 0;
  // Until every agent is welcomed (or 300 s): agents whose stream failed (connection
  // refused, admission full, controller gone) come back as weft-agent does. Returns the
  // times (ms after `t0`) at which agents were welcomed.
  auto bring_back = [&](Clock::time_point t0, std::vector<int> now_due, bool* all) {
    std::vector<double> back;
    std::multimap<Clock::time_point, int> due;
    for (int i : now_due) due.emplace(t0, i);
    int seen = 0;
    *all = false;
    while (Clock::now() - t0 < std::chrono::seconds(300)) {
      std::vector<int> failed;
      {
        std::lock_guard<std::mutex> l(shared.mu);
        failed.swap(shared.failed);
        for (; seen < shared.welcomed; ++seen) {
          back.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        *all = shared.welcomed == n;
      }
      if (*all) break;
      for (int i : failed) due.emplace(Clock::now() + backoff[i].Next(std::chrono::milliseconds(0), false, rng()), i);
      while (!due.empty() && due.begin()->first <= Clock::now()) {
        const int i = due.begin()->second;
        due.erase(due.begin());
        if (agents[i]) graveyard.push_back(std::move(agents[i]));  // over; outlives its callbacks
        stubs[i] = new_stub();
        std::string epoch;
        {
          std::lock_guard<std::mutex> l(shared.mu);
          epoch = shared.epoch;
        }
        agents[i] = std::make_unique<BenchAgent>(stubs[i].get(), absl::StrCat("node-", i), version, token, &shared, i,
                                                 epoch, /*wait_for_ready=*/false);
        ++attempts;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return back;
  };
  std::vector<int> everyone(n);
  for (int i = 0; i < n; ++i) everyone[i] = i;
  bool all = false;
  // The controller needs a moment to listen: the first attempts may be refused too.
  const auto t_connect = Clock::now();
  bring_back(t_connect, everyone, &all);
  if (!all) {
    std::fprintf(stderr, "only %d of %d agents welcomed\n", shared.welcomed, n);
    kill(ctl, SIGKILL);
    return 1;
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - t_connect).count();
  const long first_attempts = attempts;
  attempts = 0;
  const long rss_first = RssKb(ctl);
  // The storm.
  kill(ctl, SIGKILL);
  waitpid(ctl, nullptr, 0);
  const auto t0 = Clock::now();
  {
    std::lock_guard<std::mutex> l(shared.mu);
    shared.welcomed = 0;
    shared.welcome_ms.clear();
    shared.t0 = t0;
  }
  ctl = start();
  bring_back(t0, {}, &all);
  std::vector<double> back_ms;
  {
    std::lock_guard<std::mutex> l(shared.mu);
    back_ms = shared.welcome_ms;  // as the agents saw their Welcome (the loop may lag)
  }
  const double cpu = CpuSeconds(ctl);
  const long rss = RssKb(ctl);
  std::sort(back_ms.begin(), back_ms.end());
  auto pct = [&](double p) {
    return back_ms.empty() ? 0.0 : back_ms[std::min(back_ms.size() - 1, static_cast<size_t>(p * back_ms.size()))];
  };
  std::printf("bench/controller --storm: %d agents, each on its own TLS connection\n", n);
  std::printf("  first connect+welcome all: %.2f s (%ld attempts); controller RSS %.1f MB\n", connect_s,
              first_attempts, rss_first / 1024.0);
  std::printf("  controller SIGKILLed and restarted: %s; back p50 %.0f ms, p99 %.0f ms, all %.0f ms; %ld attempts "
              "(%.2f per agent)\n",
              all ? "all agents back" : "NOT ALL BACK", pct(0.5), pct(0.99), back_ms.empty() ? 0.0 : back_ms.back(),
              attempts, static_cast<double>(attempts) / n);
  std::printf("  new controller until all back: CPU %.2f s (start, state file, TLS, admission, resume), RSS %.1f MB\n",
              cpu, rss / 1024.0);
  for (auto& a : agents) a->Cancel();
  {
    std::unique_lock<std::mutex> l(shared.mu);
    shared.cv.wait_for(l, std::chrono::seconds(30), [&] { return shared.done >= n + static_cast<int>(graveyard.size()); });
  }
  kill(ctl, SIGTERM);
  waitpid(ctl, nullptr, 0);
  return all ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string controller_bin;
  int n = 1000;
  weft::flags::FlagSet f("controller_bench", "controller_bench --controller PATH [--agents N]");
  bool storm = false, new_epoch = false;
  f.String("controller", &controller_bin, "PATH", "the weft-controller binary (required)")
      .Int("agents", &n, 2, 20000, "simulated agents")
      .Bool("storm", &storm, "a reconnect storm: the controller killed and restarted under N TLS agents")
      .Bool("new-epoch", &new_epoch, "storm: the controller comes back in a new epoch (a new leader): full snapshots");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  if (controller_bin.empty()) return weft::flags::UsageError(f, "--controller is required");
  char tmpl[] = "/tmp/weft-cbench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string token = "bench-join-token-0123456789";
  std::ofstream(dir + "/token") << token << "\n";
  weft::v1::ControllerState st;
  for (int i = 0; i < n; ++i) {
    *st.mutable_snapshot()->add_nodes() = Node(i, 51820);
    (*st.mutable_pod_cidrs())[absl::StrCat("node-", i)] = Node(i, 51820).pod_cidrs(0);
  }
  const uint64_t version = static_cast<uint64_t>(n);
  st.mutable_snapshot()->set_version(version);
  // --new-epoch: the restarted controller starts a new epoch (as a new leader does), so no
  // agent can resume and each gets a full snapshot; otherwise it resumes the file's.
  if (!new_epoch) st.set_epoch("bench-epoch");
  {
    std::ofstream out(dir + "/state", std::ios::binary);
    st.SerializeToOstream(&out);
  }
  // Every agent's connection is a descriptor here and one in the controller (inherited).
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (storm) {
    const int rc = Storm(controller_bin, n, dir, token, version);
    std::filesystem::remove_all(dir);
    return rc;
  }
  const int port = 17443 + getpid() % 1000;
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  pid_t ctl = StartController(controller_bin, addr, dir, /*tls=*/false);
  // Agents spread over several channels (HTTP/2 connections), as nodes would be.
  const int kChannels = std::max(1, n / 100);
  std::vector<std::unique_ptr<weft::v1::EndpointService::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("weft.channel", c);  // distinct args: distinct connections
    stubs.push_back(weft::v1::EndpointService::NewStub(
        grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args)));
  }
  Shared shared;
  std::vector<std::unique_ptr<BenchAgent>> agents;
  const auto t_connect = Clock::now();
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<BenchAgent>(stubs[i % kChannels].get(), absl::StrCat("node-", i), version, token, &shared));
  }
  {
    std::unique_lock<std::mutex> l(shared.mu);
    if (!shared.cv.wait_for(l, std::chrono::seconds(120), [&] { return shared.welcomed == n; })) {
      std::fprintf(stderr, "only %d of %d agents welcomed\n", shared.welcomed, n);
      kill(ctl, SIGKILL);
      return 1;
    }
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - t_connect).count();
  const long rss_before = RssKb(ctl);
  const double cpu_before = CpuSeconds(ctl);
  {
    std::lock_guard<std::mutex> l(shared.mu);
    shared.target_version = version + 1;
    shared.changed_at = Clock::now();
  }
  weft::v1::AgentMessage change;
  *change.mutable_node() = Node(0, 40000);  // node-0's endpoint moves
  agents[0]->Send(change);
  bool all = false;
  {
    std::unique_lock<std::mutex> l(shared.mu);
    all = shared.cv.wait_for(l, std::chrono::seconds(60), [&] { return static_cast<int>(shared.latency_ms.size()) == n; });
  }
  const double cpu = CpuSeconds(ctl) - cpu_before;
  const long rss = RssKb(ctl);
  std::vector<double> lat;
  {
    std::lock_guard<std::mutex> l(shared.mu);
    lat = shared.latency_ms;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))]; };
  std::printf("bench/controller: %d agents (%d connections), %s\n", n, kChannels, all ? "all got the change" : "SOME MISSED IT");
  std::printf("  connect+welcome all: %.2f s; controller RSS %.1f MB before, %.1f MB after\n", connect_s,
              rss_before / 1024.0, rss / 1024.0);
  std::printf("  one endpoint change -> every agent: p50 %.1f ms, p99 %.1f ms, max %.1f ms; controller CPU %.3f s\n",
              pct(0.5), pct(0.99), lat.empty() ? 0 : lat.back(), cpu);
  std::printf("  targets at 5,000: p99 < 1000 ms, RSS < 500 MB\n");
  for (auto& a : agents) a->Cancel();
  {
    std::unique_lock<std::mutex> l(shared.mu);
    shared.cv.wait_for(l, std::chrono::seconds(30), [&] { return shared.done == n; });
  }
  kill(ctl, SIGTERM);
  waitpid(ctl, nullptr, 0);
  std::filesystem::remove_all(dir);
  return all ? 0 : 1;
}
