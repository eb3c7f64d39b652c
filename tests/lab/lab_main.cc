// weft-lab: builds the NAT lab from a topology file and reports what each node's
// WireGuard port looks like from the internet, then tears everything down.
//
//   weft-lab netcheck tests/lab/topologies/demo.json
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "lib/nat/port_probe.h"
#include "lib/sys/netns.h"
#include "lib/wireguard/uapi.h"
#include "lib/wireguard/wireguard_go.h"
#include "tests/lab/lab_cluster.h"
#include "tests/lab/nat_lab.h"
#include "lib/flags/flags.h"

namespace {

// `weft-lab cluster`: controller, agents and a pod per node; then every pod pings every
// other pod and the table shows what got through, by the path the controller chose.
int RunCluster(const weft::lab::LabSpec& spec) {
  using namespace weft;
  auto cluster = lab::LabCluster::Create(
      spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY, WEFT_RELAY_BINARY, "weft", 1});
  if (!cluster.ok()) {
    std::fprintf(stderr, "weft-lab: %s\n", std::string(cluster.status().message()).c_str());
    return 1;
  }
  auto& c = **cluster;
  std::printf("cluster up: weft-controller on 198.51.100.200:7443 (TLS), weft-relay on 198.51.100.200:3478,\n"
              "an agent and a pod on every node\n\n");
  for (const auto& n : c.nodes()) std::printf("  pod on %-9s %s\n", n.c_str(), c.PodIp(n).c_str());
  std::printf("\npod-to-pod pings (all pairs at once; first answer within 10 s):\n");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& a : c.nodes()) {
    for (const auto& b : c.nodes()) {
      if (a != b) pairs.push_back({a, b});
    }
  }
  std::vector<char> reached(pairs.size(), 0);
  {
    std::vector<std::jthread> pingers;
    for (size_t i = 0; i < pairs.size(); ++i) {
      pingers.emplace_back([&, i] { reached[i] = c.PodPing(pairs[i].first, c.PodIp(pairs[i].second), 10); });
    }
  }
  int ok = 0;
  const int total = static_cast<int>(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    ok += reached[i];
    std::printf("  %-9s -> %-9s %s\n", pairs[i].first.c_str(), pairs[i].second.c_str(), reached[i] ? "ok" : "no path");
  }
  std::printf("\n%d/%d pairs reached each other.\n\nstatus, from the controller's /status (PATH: what WireGuard "
              "uses now; DECIDED: the strategy table):\n", ok, total);
  std::printf("  %-9s %-9s %-9s %-8s %s\n", "NODE", "PEER", "PATH", "DECIDED", "WHY");
  // The agents report every 500 ms here: give the last pings' paths a moment to arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const nlohmann::json st = nlohmann::json::parse(c.ControllerStatus(), nullptr, false);
  for (const auto& n : st.is_object() ? st["nodes"] : nlohmann::json::array()) {
    std::printf("  %-9s NAT: %s\n", n.value("name", "").c_str(), n["nat"].value("reason", "").c_str());
    for (const auto& p : n["peers"]) {
      const std::string why = p.contains("why") ? p.value("why", "") : p.value("reason", "");
      std::printf("  %-9s %-9s %-9s %-8s %s\n", "", p.value("peer", "").c_str(), p.value("path", "").c_str(),
                  p.value("decision", "").c_str(), why.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  flags::FlagSet f("weft-lab", "weft-lab netcheck|cluster TOPOLOGY.json   (root: builds the NAT lab)");
  std::vector<std::string> args;
  if (auto exit_code = flags::ParseForMain(f, argc, argv, &args)) return *exit_code;
  if (args.size() != 2 || (args[0] != "netcheck" && args[0] != "cluster")) {
    return flags::UsageError(f, "give netcheck or cluster, and a topology file");
  }
  std::ifstream in(args[1]);
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = lab::ParseLabSpec(ss.str());
  if (!spec.ok()) {
    std::fprintf(stderr, "weft-lab: %s: %s\n", args[1].c_str(), std::string(spec.status().message()).c_str());
    return 2;
  }
  if (args[0] == "cluster") return RunCluster(*spec);
  auto lab = lab::NatLab::Create(*spec);
  if (!lab.ok()) {
    std::fprintf(stderr, "weft-lab: %s\n", std::string(lab.status().message()).c_str());
    return 1;
  }
  std::string servers;
  for (const auto& t : (*lab)->StunTargets()) servers += " " + t.ToString();
  std::printf("NAT lab up: %zu sites, STUN servers (coturn):%s\n", spec->sites.size(), servers.c_str());
  std::printf("each node runs wireguard-go on UDP 51820; the probe is sent from that port\n\n");
  std::printf("%-9s %-7s %-12s %-15s %-13s %-28s %-22s %s\n", "NODE", "SITE", "ROUTER", "ADDRESS", "MAPPING", "FILTERING", "REFLEXIVE", "ANSWERED");
  std::vector<std::unique_ptr<wireguard::WireGuardGo>> wgs;
  int failures = 0;
  for (const auto& site : spec->sites) {
    for (const auto& node : site.nodes) {
      const auto& ns = (*lab)->ns("n-" + node);
      const std::string ifname = absl::StrFormat("wd%d%s", getpid() % 10000, node.substr(0, 6));
      int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
      auto wg = wireguard::WireGuardGo::Start(ifname, {.netns_fd = fd, .die_with_parent = true});
      close(fd);
      if (!wg.ok() || !wireguard::UapiDevice(ifname).Set({.private_key = *wireguard::Key::GeneratePrivate(), .listen_port = 51820}).ok()) {
        std::printf("%-9s wireguard-go failed to start\n", node.c_str());
        ++failures;
        continue;
      }
      wgs.push_back(std::make_unique<wireguard::WireGuardGo>(*std::move(wg)));
      auto netns = sys::Netns::Open(ns.path());
      absl::StatusOr<nat::PortProbeReport> r = absl::UnknownError("not run");
      (void)sys::RunInNetns(*netns, [&] {
        r = nat::ProbePort(51820, (*lab)->StunTargets(), {(*lab)->NodeIp(node)});
        return r.status();
      });
      if (!r.ok()) {
        std::printf("%-9s probe failed: %s\n", node.c_str(), std::string(r.status().message()).c_str());
        ++failures;
        continue;
      }
      const nat::Verdict& v = r->verdict;
      std::string verdict = v.udp_blocked ? "UDP blocked"
                            : v.mapping == nat::Mapping::kNone ? "no NAT"
                            : v.mapping == nat::Mapping::kEndpointIndependent ? "easy (EIM)"
                            : v.mapping == nat::Mapping::kEndpointDependent ? "hard (EDM)" : "unknown";
      std::printf("%-9s %-7s %-12s %-15s %-13s %-28s %-22s %d/%d\n", node.c_str(), site.name.c_str(),
                  std::string(lab::NatKindName(site.nat)).c_str(), (*lab)->NodeIp(node).ToString().c_str(),
                  verdict.c_str(), v.udp_blocked ? "-" : std::string(nat::FilteringName(v.filtering)).c_str(),
                  v.reflexive ? v.reflexive->ToString().c_str() : "-", v.answered, v.probed);
    }
  }
  std::printf("\n(EIM: endpoint-independent mapping, peers can use the reflexive endpoint; EDM: a new\n"
              " port per destination, as EKS's --random-fully SNAT or the AWS NAT Gateway make.\n"
              " Filtering, from RFC 5780 tests: which unsolicited senders get through to the port.)\n");
  wgs.clear();
  return failures == 0 ? 0 : 1;
}
