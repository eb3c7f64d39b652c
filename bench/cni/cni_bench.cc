// bench/cni: weft-cni against Debian's reference ptp + host-local, measured in the same
// run on the same machine. Each plugin is exec'd as a runtime would (fork, enter the
// node's netns, exec, stdin config, wait), so process start-up counts, as it does for
// kubelet. Prints medians, p90s, totals and ratios. Needs root.
//
//   bench/cni/cni_bench [--pods 50] [--parallel 20] [--rounds 3]
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "tests/netns/netns_harness.h"
#include "lib/flags/flags.h"

namespace {

using weft::testing::CniCall;
using weft::testing::CniOutcome;
using weft::testing::RunCni;
using weft::testing::TestNetns;
using Clock = std::chrono::steady_clock;

struct Plugin {
  std::string label;
  std::string binary;
  std::string config;
};

struct Figures {
  std::vector<double> add_ms, del_ms;
  std::vector<double> parallel_total_ms;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

bool Call(const TestNetns& node, const Plugin& p, const std::string& cmd, const std::string& cid,
          const TestNetns& pod, double* ms) {
  CniCall c{.command = cmd, .container_id = cid, .netns = pod.path(), .config = p.config,
            .binary = p.binary};
  auto t0 = Clock::now();
  CniOutcome o = RunCni(node, c);
  if (ms) *ms = Ms(Clock::now() - t0);
  if (o.exit_code != 0) {
    std::fprintf(stderr, "%s %s %s failed: %s %s\n", p.label.c_str(), cmd.c_str(), cid.c_str(),
                 o.out.c_str(), o.err.c_str());
    return false;
  }
  return true;
}

bool Measure(const TestNetns& node, const std::vector<std::unique_ptr<TestNetns>>& pods,
             const Plugin& p, int parallel, Figures& f) {
  const int n = static_cast<int>(pods.size());
  for (int i = 0; i < n; ++i) {
    double ms;
    if (!Call(node, p, "ADD", "seq" + std::to_string(i), *pods[i], &ms)) return false;
    f.add_ms.push_back(ms);
  }
  for (int i = 0; i < n; ++i) {
    double ms;
    if (!Call(node, p, "DEL", "seq" + std::to_string(i), *pods[i], &ms)) return false;
    f.del_ms.push_back(ms);
  }
  // weft-cni's DEL leaves the veth's unregistration to a background process; let it
  // finish so the parallel ADDs below measure ADD alone (ptp's DEL is synchronous).
  for (int i = 0; i < 500; ++i) {
    std::string out;
    node.Exec("ip -o link show type veth | wc -l", &out);
    if (std::atoi(out.c_str()) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<std::thread> threads;
  std::vector<char> ok(parallel, 0);
  auto t0 = Clock::now();
  for (int i = 0; i < parallel; ++i) {
    threads.emplace_back([&, i] { ok[i] = Call(node, p, "ADD", "par" + std::to_string(i), *pods[i], nullptr); });
  }
  for (auto& t : threads) t.join();
  f.parallel_total_ms.push_back(Ms(Clock::now() - t0));
  bool all = std::all_of(ok.begin(), ok.end(), [](char c) { return c != 0; });
  for (int i = 0; i < parallel; ++i) Call(node, p, "DEL", "par" + std::to_string(i), *pods[i], nullptr);
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  int pods_n = 50, parallel = 20, rounds = 3;
  weft::flags::FlagSet f("cni_bench",
                         "cni_bench [flags]   (root: weft-cni vs Debian's ptp + host-local, ADD/DEL latency)");
  f.Int("pods", &pods_n, 1, 10000, "pod network namespaces")
      .Int("parallel", &parallel, 1, 10000, "ADDs and DELs in flight")
      .Int("rounds", &rounds, 1, 1000, "rounds per plugin");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  parallel = std::min(parallel, pods_n);
  if (!weft::testing::IsRoot()) {
    std::fprintf(stderr, "cni_bench needs root (network namespaces)\n");
    return 77;
  }
  TestNetns node("benchnode");
  std::vector<std::unique_ptr<TestNetns>> pods;
  for (int i = 0; i < pods_n; ++i) pods.push_back(std::make_unique<TestNetns>("bp" + std::to_string(i)));
  // Both IPAM stores on a tmpfs, as /run is on a real node (weft-cni's default dataDir
  // is /run/weft/cni); /dev/shm is a tmpfs everywhere.
  const std::string dir = "/dev/shm/" + node.name();
  std::vector<Plugin> plugins = {
      {"weft-cni", weft::testing::WeftCniPath(),
       R"({"cniVersion":"1.0.0","name":"benchweft","type":"weft","podCIDRs":["10.246.0.0/16"],"mtu":1420,"dataDir":")" +
           dir + R"(/weft"})"},
      {"ptp+host-local", "/usr/lib/cni/ptp",
       R"({"cniVersion":"1.0.0","name":"benchptp","type":"ptp","ipMasq":false,"mtu":1420,"ipam":{"type":"host-local","subnet":"10.247.0.0/16","dataDir":")" +
           dir + R"(/ptp"}})"},
  };
  if (access(plugins[1].binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "reference plugins not installed (containernetworking-plugins)\n");
    return 77;
  }
  std::vector<Figures> figs(plugins.size());
  // Rounds alternate between the plugins so drift on the machine hits both alike.
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < plugins.size(); ++i) {
      if (!Measure(node, pods, plugins[i], parallel, figs[i])) return 1;
    }
  }
  std::filesystem::remove_all(dir);

  std::printf("bench/cni: %d pods sequential ADD then DEL, %d parallel ADDs, %d rounds (%u cores)\n",
              pods_n, parallel, rounds, std::thread::hardware_concurrency());
  std::printf("%-16s %12s %12s %12s %12s %18s\n", "plugin", "ADD p50 ms", "ADD p90 ms", "DEL p50 ms",
              "DEL p90 ms", "parallel ADD ms");
  for (size_t i = 0; i < plugins.size(); ++i) {
    const Figures& f = figs[i];
    std::printf("%-16s %12.2f %12.2f %12.2f %12.2f %18.1f\n", plugins[i].label.c_str(),
                Percentile(f.add_ms, .5), Percentile(f.add_ms, .9), Percentile(f.del_ms, .5),
                Percentile(f.del_ms, .9), Percentile(f.parallel_total_ms, .5));
  }
  const Figures& w = figs[0];
  const Figures& p = figs[1];
  double add = Percentile(w.add_ms, .5) / Percentile(p.add_ms, .5);
  double del = Percentile(w.del_ms, .5) / Percentile(p.del_ms, .5);
  double par = Percentile(w.parallel_total_ms, .5) / Percentile(p.parallel_total_ms, .5);
  std::printf("ratio weft/ptp: ADD p50 %.3f (target <= 0.125)  DEL p50 %.3f (target <= 0.5)  "
              "parallel %.3f (target <= 0.167)\n", add, del, par);
  std::printf("targets %s\n", add <= 0.125 && del <= 0.5 && par <= 1.0 / 6 ? "MET" : "NOT MET");
  return 0;
}
