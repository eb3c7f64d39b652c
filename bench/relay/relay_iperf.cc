// bench/relay: TCP throughput between two pods over WireGuard, through weft-relay vs
// direct, in the NAT lab (root). iperf3 server in e1's pod; a client in e2's pod (easy <->
// easy: direct) and one in h1's pod (hard <-> port-restricted easy: relayed).
// Rounds alternate direct and relayed (the machine's noise hits both alike); the ratio
// is of the medians.
//   sudo build/bench/relay/relay_iperf [--seconds 5] [--rounds 3]
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"
#include "lib/flags/flags.h"

namespace {

double Throughput(weft::lab::LabCluster& c, const std::string& from, int seconds) {
  std::string out;
  c.Pod("e1").Exec("iperf3 -s -1 -D -p 5201", &out);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c.Pod(from).Exec(absl::StrCat("iperf3 -c ", c.PodIp("e1"), " -p 5201 -t ", seconds, " -J"), &out);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_object()) return 0;
  return j["end"]["sum_received"].value("bits_per_second", 0.0) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, rounds = 3;
  weft::flags::FlagSet f("relay_iperf",
                         "relay_iperf [--seconds N] [--rounds N]   (root: iperf3 pod to pod, direct vs via weft-relay)");
  f.Int("seconds", &seconds, 1, 600, "per iperf3 run").Int("rounds", &rounds, 1, 20, "direct/relayed rounds");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  auto spec = weft::lab::ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "natgw", "nat": "hard", "nodes": ["h1"]},
      {"name": "home", "nat": "easy", "nodes": ["e1"]},
      {"name": "shop", "nat": "easy", "nodes": ["e2"]}]})");
  weft::lab::ClusterBinaries bin{WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY,
                                 "weft", 1};
  auto c = weft::lab::LabCluster::Create(*spec, bin);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    return 1;
  }
  if (!(*c)->PodPing("e2", (*c)->PodIp("e1"), 15) || !(*c)->PodPing("h1", (*c)->PodIp("e1"), 15)) {
    std::fprintf(stderr, "pods do not reach each other\n");
    return 1;
  }
  std::vector<double> direct, relayed;
  for (int r = 0; r < rounds; ++r) {
    direct.push_back(Throughput(**c, "e2", seconds));
    relayed.push_back(Throughput(**c, "h1", seconds));
    std::printf("round %d: direct %.0f Mbit/s, through weft-relay %.0f Mbit/s: x%.2f\n", r + 1, direct.back(),
                relayed.back(), direct.back() > 0 ? relayed.back() / direct.back() : 0);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const double d = median(direct), rel = median(relayed);
  std::printf("bench/relay iperf3 TCP over WireGuard, %d s x %d rounds, medians: direct %.0f Mbit/s, "
              "through weft-relay %.0f Mbit/s: x%.2f (target >= 0.9)\n",
              seconds, rounds, d, rel, d > 0 ? rel / d : 0);
  return 0;
}
