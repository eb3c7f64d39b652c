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

#include "lib/http/http_listen.h"
#include "node-agent/agent.h"
#include "node-agent/cleanup.h"
#include "node-agent/http_status.h"
#include "node-agent/node_files.h"

namespace {

constexpr char kUsage[] =
    "usage: weft-agent --node NAME --controller HOST:PORT (--join-token-file FILE | --token-file FILE)\n"
    "                  --stun HOST:PORT,HOST:PORT,HOST:PORT [--wg-port 51820] [--wg-interface weft0]\n"
    "                  [--state-dir /var/lib/weft] [--cni-conf-dir /etc/cni/net.d]\n"
    "                  [--cni-data-dir /run/weft/cni] [--pod-mtu 1420] [--nat-interval-ms 15000]\n"
    "                  [--ca-file FILE | --insecure] [--http-listen 0.0.0.0:9476 (\"\" to disable)]\n"
    "                  [--health-interval-ms 5000] [--snat-mitigation]\n"
    "                  [--cleanup-on-uninstall NAMESPACE/DAEMONSET] [--cni-bin-file /opt/cni/bin/weft]\n"
    "       weft-agent --cleanup [--wg-interface weft0] [--state-dir ...] [--cni-conf-dir ...]\n"
    "                  [--cni-data-dir ...] [--cni-bin-file ...]   (uninstall: remove what the agent made)\n";

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

int Usage(const std::string& why) {
  std::fprintf(stderr, "weft-agent: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  agent::AgentOptions o;
  std::string token_file;
  std::string http_listen = "0.0.0.0:9476";
  bool cleanup_now = false;
  std::string uninstall_ds, cni_bin_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    int n = 0;
    if (a == "--node") o.node = value();
    else if (a == "--controller") o.controller = value();
    else if (a == "--join-token-file") token_file = value();
    else if (a == "--token-file") o.token_file = value();
    else if (a == "--snat-mitigation") o.snat_mitigation = true;
    else if (a == "--cleanup") cleanup_now = true;
    else if (a == "--cleanup-on-uninstall") uninstall_ds = value();
    else if (a == "--cni-bin-file") cni_bin_file = value();
    else if (a == "--health-interval-ms" && absl::SimpleAtoi(value(), &n) && n >= 100) o.health_interval = std::chrono::milliseconds(n);
    else if (a == "--insecure") o.insecure = true;
    else if (a == "--ca-file") o.ca_file = value();
    else if (a == "--wg-interface") o.wg_interface = value();
    else if (a == "--state-dir") o.state_dir = value();
    else if (a == "--cni-conf-dir") o.cni_conf_dir = value();
    else if (a == "--cni-data-dir") o.cni_data_dir = value();
    else if (a == "--http-listen") http_listen = value();
    else if (a == "--wg-port" && absl::SimpleAtoi(value(), &n) && n > 0 && n < 65536) o.wg_port = static_cast<uint16_t>(n);
    else if (a == "--pod-mtu" && absl::SimpleAtoi(value(), &n)) o.pod_mtu = n;
    else if (a == "--nat-interval-ms" && absl::SimpleAtoi(value(), &n) && n >= 100) o.nat_interval = std::chrono::milliseconds(n);
    else if (a == "--stun") {
      for (absl::string_view s : absl::StrSplit(value(), ',', absl::SkipEmpty())) {
        auto e = ResolveStun(s);
        if (!e.ok()) return Usage(std::string(e.status().message()));
        o.stun.push_back(*e);
      }
    } else return Usage("bad or unknown flag " + a);
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
  if (o.stun.size() < 3) return Usage("give three or more --stun servers");
  if (!o.insecure && o.ca_file.empty()) return Usage("give --ca-file (or --insecure for a lab)");
  if (!token_file.empty()) {
    auto token = agent::ReadWholeFile(token_file);
    if (!token.ok()) return Usage(std::string(token.status().message()));
    o.join_token = std::string(absl::StripAsciiWhitespace(*token));
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

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
    auto config = k8s::KubeConfig::InCluster();
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
