// weft-agent: runs on every node (DaemonSet, hostNetwork). Standalone mode flags below;
// Kubernetes mode (token from the projected ServiceAccount) comes with the control plane.
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include <httplib.h>

#include "lib/flags/flags.h"
#include "lib/http/http_listen.h"
#include "lib/sys/stop_signals.h"
#include "node-agent/agent.h"
#include "node-agent/cleanup.h"
#include "node-agent/http_status.h"
#include "node-agent/node_files.h"
#include "node-agent/relay_forwarder.h"

namespace {

constexpr char kSynopsis[] =
    "weft-agent --node NAME --controller HOST:PORT (--join-token-file FILE | --token-file FILE)\n"
    "                  --stun HOST:PORT,HOST:PORT,HOST:PORT (--ca-file FILE | --insecure) [flags]\n"
    "       weft-agent --cleanup [--wg-interface weft0] [--state-dir ...] [--cni-conf-dir ...]\n"
    "                  [--cni-data-dir ...] [--cni-bin-file ...]   (uninstall: remove what the agent made)\n"
    "       weft-agent relay-forwarder --socket PATH   (started by the agent: holds the relay allocation)";

// "192.0.2.1:3478" as is; "stun.example.org:3478" resolved (IPv4; the first address).
absl::StatusOr<weft::net::Endpoint> ResolveStun(absl::string_view text) {
  if (auto e = weft::net::Endpoint::Parse(text); e.ok()) return e;
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("STUN server \"", text, "\" needs a port"));
  const std::string host(text.substr(0, colon)), port(text.substr(colon + 1));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve STUN server ", host, ": ", gai_strerror(rc)));
  }
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, ip, sizeof(ip));
  freeaddrinfo(res);
  return weft::net::Endpoint::Parse(absl::StrCat(ip, ":", port));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  // The relay forwarder the agent starts (a process of its own: it outlives the agent).
  if (argc >= 2 && std::string(argv[1]) == "relay-forwarder") return agent::RelayForwarderMain(argc - 1, argv + 1);
  agent::AgentOptions o;
  std::string token_file;
  std::string http_listen = "0.0.0.0:9476";
  bool cleanup_now = false;
  std::string uninstall_ds, cni_bin_file;
  std::string wireguard = "auto";
  std::vector<std::string> stun;
  k8s::KubeConfig kube;
  int health_ms = 5000, nat_ms = 15000, wg_port = o.wg_port, mtu_port = o.mtu_probe_port;
  flags::FlagSet f("weft-agent", kSynopsis);
  f.String("node", &o.node, "NAME", "this node's name (required)")
      .String("controller", &o.controller, "HOST:PORT", "the controller (required)")
      .String("join-token-file", &token_file, "FILE", "the join token (standalone)")
      .String("token-file", &o.token_file, "FILE",
              "the projected ServiceAccount token (Kubernetes; re-read on every connection)")
      .List("stun", &stun, "HOST:PORT", "STUN servers for the WireGuard port's NAT verdict (3 or more)")
      .String("ca-file", &o.ca_file, "FILE", "the controller's CA")
      .Bool("insecure", &o.insecure, "no TLS to the controller (a lab)")
      .String("wg-interface", &o.wg_interface, "NAME", "the WireGuard interface")
      .String("wireguard", &wireguard, "auto|kernel|userspace",
              "the kernel's WireGuard when the kernel makes the device (auto), or as asked (userspace: wireguard-go)")
      .Int("wg-port", &wg_port, 1, 65535, "the WireGuard port")
      .String("state-dir", &o.state_dir, "DIR", "the WireGuard key and the node's pod CIDRs")
      .Bool("relay-forwarder-sidecar", &o.relay_forwarder_sidecar,
            "the relay forwarder runs beside the agent (a sidecar listening at STATE_DIR/relay-forwarder.sock): "
            "use it, never launch one")
      .String("cni-conf-dir", &o.cni_conf_dir, "DIR", "where the conflist is written")
      .String("cni-data-dir", &o.cni_data_dir, "DIR", "weft-cni's IPAM store")
      .String("cni-bin-file", &cni_bin_file, "FILE", "weft-cni as installed (removed by --cleanup)")
      .Int("pod-mtu", &o.pod_mtu, 0, 65535,
           "WireGuard and pod MTU; 0: the uplink's MTU (route to the STUN servers) minus WireGuard's 80 bytes")
      .Int("mtu-probe-port", &mtu_port, 0, 65535,
           "UDP port on the WireGuard device for per-peer path MTU probes; 0: no discovery (the device MTU)")
      .Int("nat-interval-ms", &nat_ms, 100, 86400000, "NAT re-probe interval")
      .Int("health-interval-ms", &health_ms, 100, 86400000, "per-peer data-plane report interval")
      .String("http-listen", &http_listen, "ADDR:PORT", "/healthz, /readyz, /metrics (\"\" disables)")
      .Bool("snat-mitigation", &o.snat_mitigation,
            "install a port-preserving SNAT rule for the WireGuard port where the node's rules randomize it")
      .String("cleanup-on-uninstall", &uninstall_ds, "NAMESPACE/DAEMONSET",
              "on SIGTERM, clean the node if that DaemonSet is gone (Weft uninstalled)")
      .Bool("cleanup", &cleanup_now, "one-shot uninstall: remove what the agent made on this node")
      .String("kube-api", &kube.server, "URL", "for --cleanup-on-uninstall: the API server (default: in-cluster)")
      .String("kube-token-file", &kube.token_file, "FILE", "bearer token for --kube-api")
      .String("kube-ca-file", &kube.ca_file, "FILE", "CA for --kube-api");
  if (auto exit_code = flags::ParseForMain(f, argc, argv)) return *exit_code;
  if (auto b = wireguard::ParseBackendChoice(wireguard); b.ok()) {
    o.wireguard = *b;
  } else {
    return flags::UsageError(f, std::string("--wireguard: ") + std::string(b.status().message()));
  }
  o.wg_port = static_cast<uint16_t>(wg_port);
  o.mtu_probe_port = static_cast<uint16_t>(mtu_port);
  o.health_interval = std::chrono::milliseconds(health_ms);
  o.nat_interval = std::chrono::milliseconds(nat_ms);
  auto Usage = [&f](const std::string& why) { return flags::UsageError(f, why); };
  // Addresses are used as they are; names are resolved before every NAT round, since a
  // fresh cluster's DNS runs in pods that wait for the network this agent sets up.
  bool names = false;
  for (const std::string& s : stun) {
    if (auto e = net::Endpoint::Parse(s); e.ok()) {
      // Kept apart: mixed into the IPv4 servers' answers, an IPv6 one would make any NAT
      // look hard. The IPv6 servers give IPv6's own verdict (the node's global address, or
      // NPTv6's translation) and find an IPv6-only node's uplink.
      (e->ip.is_v4() ? o.stun : o.stun6).push_back(*e);
      continue;
    }
    int port = 0;
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(s.substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return Usage("--stun: \"" + s + "\" is not HOST:PORT");
    }
    names = true;
  }
  if (names) {
    o.stun.clear();
    o.resolve_stun = [stun, logged = std::string()]() mutable -> absl::StatusOr<std::vector<net::Endpoint>> {
      std::vector<net::Endpoint> out;
      for (const std::string& s : stun) {
        auto e = ResolveStun(s);
        if (!e.ok()) {
          if (logged != e.status().message()) {  // once per distinct failure, not every retry
            logged = std::string(e.status().message());
            std::fprintf(stderr, "weft-agent: %s (retrying)\n", logged.c_str());
          }
          return e.status();
        }
        out.push_back(*e);
      }
      logged.clear();
      return out;
    };
  }
  const agent::CleanupOptions cleanup{.wg_interface = o.wg_interface, .cni_conf_dir = o.cni_conf_dir,
                                      .cni_data_dir = o.cni_data_dir, .state_dir = o.state_dir,
                                      .cni_bin_file = cni_bin_file};
  if (cleanup_now) {
    auto done = agent::CleanupNode(cleanup);
    if (done.ok()) {
      for (const auto& line : *done) std::fprintf(stderr, "weft-agent: %s\n", line.c_str());
    }
    if (!done.ok()) std::fprintf(stderr, "weft-agent: cleanup: %s\n", done.status().ToString().c_str());
    return done.ok() ? 0 : 1;
  }
  if (!uninstall_ds.empty() && uninstall_ds.find('/') == std::string::npos) {
    return Usage("--cleanup-on-uninstall takes NAMESPACE/DAEMONSET");
  }
  if (o.node.empty() || o.controller.empty() || (token_file.empty() == o.token_file.empty())) {
    return Usage("--node, --controller and one of --join-token-file (standalone) or --token-file (kubernetes) are required");
  }
  if (stun.size() < 3) return Usage("give three or more --stun servers");
  if (!o.insecure && o.ca_file.empty()) return Usage("give --ca-file (or --insecure for a lab)");
  if (!token_file.empty()) {
    auto token = agent::ReadWholeFile(token_file);
    if (!token.ok()) return Usage(std::string(token.status().message()));
    o.join_token = std::string(absl::StripAsciiWhitespace(*token));
  }

  const sigset_t stop_signals = sys::BlockStopSignals();

  auto agent = agent::Agent::Create(o);
  if (!agent.ok()) {
    std::fprintf(stderr, "weft-agent: %s\n", agent.status().ToString().c_str());
    return 1;
  }
  std::jthread run([&](std::stop_token st) { (*agent)->Run(st); });
  httplib::Server http;
  std::jthread http_thread;
  if (!http_listen.empty()) {
    agent::Agent* a = agent->get();
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    http.Get("/readyz", [a](const httplib::Request&, httplib::Response& res) {
      std::string why;
      res.status = agent::Ready(a->GetStatus(), &why) ? 200 : 503;
      res.set_content(why + "\n", "text/plain");
    });
    http.Get("/metrics", [a](const httplib::Request&, httplib::Response& res) {
      auto dev = a->device().Get();
      res.set_content(agent::RenderMetrics(a->GetStatus(), dev.ok() ? &*dev : nullptr), "text/plain; version=0.0.4");
    });
    if (absl::Status s = http::Bind(http, http_listen); absl::IsInvalidArgument(s)) {
      return Usage("--http-listen ADDR:PORT");
    } else if (!s.ok()) {
      std::fprintf(stderr, "weft-agent: cannot listen on %s\n", http_listen.c_str());
      return 1;
    }
    http_thread = std::jthread([&http] { http.listen_after_bind(); });
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  bool uninstall = false;
  if (!uninstall_ds.empty()) {
    // Kubernetes: a deleted DaemonSet means Weft is being uninstalled; anything else (a
    // rolling update, a drain, a node reboot) keeps the node's data plane as it is.
    auto config = kube.server.empty() ? k8s::KubeConfig::InCluster() : absl::StatusOr<k8s::KubeConfig>(kube);
    if (config.ok()) {
      k8s::KubeClient client(*config);
      const size_t slash = uninstall_ds.find('/');
      auto gone = agent::DaemonSetGone(client, uninstall_ds.substr(0, slash), uninstall_ds.substr(slash + 1));
      uninstall = gone.ok() && *gone;
      if (!gone.ok()) std::fprintf(stderr, "weft-agent: cannot tell an uninstall: %s\n", gone.status().ToString().c_str());
    }
  }
  std::fprintf(stderr, "weft-agent: signal %d, stopping (%s)\n", sig,
               uninstall ? "Weft is being uninstalled: cleaning the node" : "the WireGuard device stays up");
  run.request_stop();
  http.stop();
  if (uninstall) {
    run.join();
    agent->reset();
    auto done = agent::CleanupNode(cleanup);
    if (done.ok()) {
      for (const auto& line : *done) std::fprintf(stderr, "weft-agent: %s\n", line.c_str());
    } else {
      std::fprintf(stderr, "weft-agent: cleanup: %s\n", done.status().ToString().c_str());
    }
  }
  return 0;
}
