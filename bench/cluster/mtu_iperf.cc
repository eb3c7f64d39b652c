// bench/cluster mtu_iperf: what path MTU discovery costs on a link that needs none. TCP
// throughput between two pods over WireGuard (easy <-> easy, direct, 1500 everywhere)
// with discovery (the default) and without (--mtu-probe-port=0, what Weft did before),
// rounds alternating (the agents restarted with the other setting; the device, its
// peers and routes are adopted), the ratio of the medians; then the probe traffic of a
// pair at rest, counted by nftables on one node for `--rest` seconds.
//   sudo build/bench/cluster/mtu_iperf [--seconds 5] [--rounds 3] [--rest 60]
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/flags/flags.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace {

double Throughput(weft::lab::LabCluster& c, int seconds) {
  std::string out;
  c.Pod("e1").Exec("iperf3 -s -1 -D -p 5201", &out);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c.Pod("e2").Exec(absl::StrCat("iperf3 -c ", c.PodIp("e1"), " -p 5201 -t ", seconds, " -J"), &out);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_object()) return 0;
  return j["end"]["sum_received"].value("bits_per_second", 0.0) / 1e6;
}

bool Restart(weft::lab::LabCluster& c, const std::vector<std::string>& flags) {
  for (const char* n : {"e1", "e2"}) {
    c.StopAgent(n);
    if (!c.StartAgent(n, flags).ok()) return false;
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // searches done (one probe each at 1500)
  return c.PodPing("e2", c.PodIp("e1"), 15);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, rounds = 3, rest = 60;
  weft::flags::FlagSet f("mtu_iperf", "mtu_iperf [--seconds N] [--rounds N] [--rest N]   (root)");
  f.Int("seconds", &seconds, 1, 600, "per iperf3 run")
      .Int("rounds", &rounds, 1, 20, "rounds of each setting")
      .Int("rest", &rest, 0, 3600, "seconds of rest over which probe traffic is counted");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  auto spec = weft::lab::ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "home", "nat": "easy", "nodes": ["e1"]},
      {"name": "shop", "nat": "easy", "nodes": ["e2"]}]})");
  auto c = weft::lab::LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY});
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    return 1;
  }
  weft::lab::LabCluster& cluster = **c;
  std::vector<double> on, off;
  for (int r = 0; r < rounds; ++r) {
    if (!Restart(cluster, {"--mtu-probe-port=0"})) return 1;
    off.push_back(Throughput(cluster, seconds));
    if (!Restart(cluster, {})) return 1;
    on.push_back(Throughput(cluster, seconds));
    std::printf("round %d: without discovery %.0f Mbit/s, with %.0f Mbit/s: x%.2f\n", r + 1, off.back(), on.back(),
                off.back() > 0 ? on.back() / off.back() : 0);
  }
  const double m_on = Median(on), m_off = Median(off);
  std::printf("bench/cluster mtu_iperf: iperf3 TCP pod to pod over WireGuard at 1500, %d s x %d rounds, medians: "
              "without discovery %.0f Mbit/s, with %.0f Mbit/s: x%.2f (target >= 1.0 within noise)\n",
              seconds, rounds, m_off, m_on, m_off > 0 ? m_on / m_off : 0);
  if (rest > 0) {
    // Probe traffic at rest, both directions as e1 sees it: its probes out and acks in,
    // and the peer's probes in and its acks out (UDP to and from the probe port).
    const auto& ns = cluster.lab().ns("n-e1");
    ns.Exec("nft add table ip mtubench && "
            "nft add chain ip mtubench out '{ type filter hook output priority 0; }' && "
            "nft add chain ip mtubench in '{ type filter hook input priority 0; }' && "
            "nft add rule ip mtubench out udp dport 51821 counter && nft add rule ip mtubench out udp sport 51821 counter && "
            "nft add rule ip mtubench in udp dport 51821 counter && nft add rule ip mtubench in udp sport 51821 counter");
    std::this_thread::sleep_for(std::chrono::seconds(rest));
    std::string out;
    ns.Exec("nft list table ip mtubench", &out);
    ns.Exec("nft delete table ip mtubench");
    long long bytes = 0;
    for (size_t p = out.find("bytes "); p != std::string::npos; p = out.find("bytes ", p + 6)) {
      bytes += std::atoll(out.c_str() + p + 6);
    }
    std::printf("probe traffic at rest over %d s: %lld bytes, %.1f bit/s for the pair (target < 1000 per peer)\n", rest,
                bytes, bytes * 8.0 / rest);
  }
  return 0;
}
