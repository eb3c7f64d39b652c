// bench/relay: TCP throughput between two pods over WireGuard, through weft-relay vs
// direct, in the NAT lab (root). iperf3 server in e1's pod; a client in e2's pod (easy <->
// easy: direct) and one in h1's pod (hard <-> port-restricted easy: relayed).
//   sudo build/bench/relay/relay_iperf [--seconds 5]
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

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
  int seconds = 5;
  if (argc == 3 && std::string(argv[1]) == "--seconds") (void)absl::SimpleAtoi(argv[2], &seconds);
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
  const double direct = Throughput(**c, "e2", seconds);
  const double relayed = Throughput(**c, "h1", seconds);
  std::printf("bench/relay iperf3 TCP over WireGuard, %d s: direct %.0f Mbit/s, through weft-relay %.0f Mbit/s: x%.2f (target >= 0.9)\n",
              seconds, direct, relayed, direct > 0 ? relayed / direct : 0);
  return 0;
}
