// weft-relay: a STUN Binding server and TURN relay (RFC 8656) for node pairs with no
// direct path. It relays what agents send it (WireGuard ciphertext) and never holds a key.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/flags/flags.h"
#include "lib/http/http_listen.h"
#include "lib/k8s/kube_client.h"
#include "lib/k8s/node_address.h"
#include "relay/udp_relay.h"

namespace {

constexpr char kSynopsis[] =
    "weft-relay --secret-file FILE [--listen 0.0.0.0:3478] [--relay-ip IP | --relay-ip-from-node NODE] [flags]\n"
    "  --relay-ip-from-node (Kubernetes, hostNetwork): the relayed addresses are the Node's\n"
    "  ExternalIP (else its InternalIP), read from the API server at start.\n"
    "  The secret is the TURN REST shared secret (coturn's static-auth-secret): usernames\n"
    "  are \"<expiry>:<name>\", passwords base64(HMAC-SHA1(secret, username)).";

// The Node's reachable address (k8s::ReachableNodeAddress); retried for about a minute
// while the API server is not there yet.
absl::StatusOr<std::string> NodeAddress(const weft::k8s::KubeConfig& kube, const std::string& node) {
  weft::k8s::KubeClient client(kube);
  absl::Status last;
  for (int attempt = 0; attempt < 60; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    auto n = client.Get("/api/v1/nodes/" + node);
    if (!n.ok()) {
      last = n.status();
      std::fprintf(stderr, "weft-relay: Node %s: %s\n", node.c_str(), last.ToString().c_str());
      continue;
    }
    std::string ip = weft::k8s::ReachableNodeAddress(*n);
    if (ip.empty()) return absl::FailedPreconditionError("Node " + node + " lists no IPv4 ExternalIP or InternalIP");
    return ip;
  }
  return last;
}

std::string Metrics(const weft::turn::Counters& c, size_t allocations, uint64_t local) {
  std::string out =
      "# HELP weft_relay_allocations TURN allocations.\n# TYPE weft_relay_allocations gauge\n";
  absl::StrAppend(&out, "weft_relay_allocations ", allocations, "\n");
  absl::StrAppend(&out, "# HELP weft_relay_datagrams_total Datagrams relayed, by direction.\n",
                  "# TYPE weft_relay_datagrams_total counter\n");
  absl::StrAppend(&out, "weft_relay_datagrams_total{direction=\"to_peer\"} ", c.to_peers, "\n");
  absl::StrAppend(&out, "weft_relay_datagrams_total{direction=\"to_client\"} ", c.to_clients, "\n");
  absl::StrAppend(&out, "# HELP weft_relay_local_deliveries_total Datagrams between two allocations of this relay, ",
                  "delivered inside it.\n# TYPE weft_relay_local_deliveries_total counter\n",
                  "weft_relay_local_deliveries_total ", local, "\n");
  absl::StrAppend(&out, "# HELP weft_relay_binding_total STUN Binding requests answered.\n",
                  "# TYPE weft_relay_binding_total counter\nweft_relay_binding_total ", c.binding, "\n");
  absl::StrAppend(&out, "# HELP weft_relay_dropped_total Datagrams dropped, by reason.\n",
                  "# TYPE weft_relay_dropped_total counter\n");
  for (auto [reason, n] : {std::pair{"malformed", c.malformed}, {"unauthenticated", c.unauthenticated},
                           {"no_allocation", c.no_allocation}, {"no_permission", c.no_permission},
                           {"no_channel", c.no_channel}, {"rate_limited", c.rate_limited}, {"quota", c.quota}}) {
    absl::StrAppend(&out, "weft_relay_dropped_total{reason=\"", reason, "\"} ", n, "\n");
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  relay::RelayOptions o;
  o.listen = *net::Endpoint::Parse("0.0.0.0:3478");
  std::string secret_file, relay_ip, http_listen = "0.0.0.0:9477", relay_node;
  k8s::KubeConfig kube;
  int64_t max_allocations = o.turn.max_allocations, per_user = o.turn.max_allocations_per_user,
          bytes_per_second = o.turn.max_bytes_per_second;
  flags::FlagSet f("weft-relay", kSynopsis);
  f.String("secret-file", &secret_file, "FILE", "the TURN REST shared secret (required)")
      .Custom("listen", "IP:PORT", "0.0.0.0:3478", "STUN/TURN, UDP and TCP",
              [&o](absl::string_view v) -> absl::Status {
                auto e = net::Endpoint::Parse(v);
                if (!e.ok()) return absl::InvalidArgumentError("takes IP:PORT");
                o.listen = *e;
                return absl::OkStatus();
              })
      .String("relay-ip", &relay_ip, "IP", "the relayed addresses' IP (default: --listen's)")
      .String("relay-ip-from-node", &relay_node, "NODE", "Kubernetes: the relayed IP is this Node's address")
      .String("kube-api", &kube.server, "URL", "the API server (default: in-cluster)")
      .String("kube-token-file", &kube.token_file, "FILE", "bearer token for --kube-api")
      .String("kube-ca-file", &kube.ca_file, "FILE", "CA for --kube-api")
      .String("realm", &o.turn.realm, "REALM", "the TURN realm")
      .String("http-listen", &http_listen, "ADDR:PORT", "/healthz, /metrics (\"\" disables)")
      .Custom("relay-ports", "LOW-HIGH", "49152-65535", "the relayed ports",
              [&o](absl::string_view v) -> absl::Status {
                std::vector<std::string> r = absl::StrSplit(v, '-');
                int lo = 0, hi = 0;
                if (r.size() != 2 || !absl::SimpleAtoi(r[0], &lo) || !absl::SimpleAtoi(r[1], &hi) || lo < 1 ||
                    hi > 65535 || lo > hi) {
                  return absl::InvalidArgumentError("takes LOW-HIGH within 1-65535");
                }
                o.port_min = static_cast<uint16_t>(lo);
                o.port_max = static_cast<uint16_t>(hi);
                return absl::OkStatus();
              })
      .Int("max-allocations", &max_allocations, 1, int64_t{1} << 40, "allocations in total")
      .Int("max-allocations-per-user", &per_user, 1, int64_t{1} << 40, "allocations per TURN username")
      .Int("max-bytes-per-second", &bytes_per_second, 0, int64_t{1} << 50, "per allocation; 0 is unlimited");
  if (auto exit_code = flags::ParseForMain(f, argc, argv)) return *exit_code;
  auto Usage = [&f](const std::string& why) { return flags::UsageError(f, why); };
  o.turn.max_allocations = max_allocations;
  o.turn.max_allocations_per_user = per_user;
  o.turn.max_bytes_per_second = bytes_per_second;
  if (secret_file.empty()) return Usage("--secret-file is required");
  std::ifstream in(secret_file);
  std::stringstream ss;
  ss << in.rdbuf();
  o.turn.secret = std::string(absl::StripAsciiWhitespace(ss.str()));
  if (o.turn.secret.size() < 16) return Usage("the secret must be at least 16 characters");
  if (!relay_node.empty()) {
    if (!relay_ip.empty()) return Usage("give --relay-ip or --relay-ip-from-node, not both");
    if (kube.server.empty()) {
      auto in_cluster = k8s::KubeConfig::InCluster();
      if (!in_cluster.ok()) return Usage(std::string(in_cluster.status().message()));
      kube = *in_cluster;
    }
    auto ip = NodeAddress(kube, relay_node);
    if (!ip.ok()) {
      std::fprintf(stderr, "weft-relay: --relay-ip-from-node: %s\n", ip.status().ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "weft-relay: Node %s is reached at %s\n", relay_node.c_str(), ip->c_str());
    relay_ip = *ip;
  }
  if (relay_ip.empty()) {
    if (o.listen.ip.ToString() == "0.0.0.0") return Usage("--relay-ip is required when listening on 0.0.0.0");
    o.relay_ip = o.listen.ip;
  } else {
    auto ip = net::IpAddress::Parse(relay_ip);
    if (!ip.ok()) return Usage("--relay-ip IP");
    o.relay_ip = *ip;
  }
  std::random_device rd;
  o.turn.nonce_key = absl::StrCat(rd(), rd(), rd(), rd());

  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto r = relay::UdpRelay::Create(o);
  if (!r.ok()) {
    std::fprintf(stderr, "weft-relay: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "weft-relay: STUN/TURN on %s:%u (UDP), relayed addresses %s:%u-%u\n",
               o.listen.ip.ToString().c_str(), (*r)->port(), o.relay_ip.ToString().c_str(), o.port_min, o.port_max);
  std::jthread loop([&](std::stop_token st) { (*r)->Run(st); });
  httplib::Server http;
  std::jthread http_thread;
  if (!http_listen.empty()) {
    relay::UdpRelay* relay = r->get();
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    http.Get("/metrics", [relay](const httplib::Request&, httplib::Response& res) {
      res.set_content(Metrics(relay->counters(), relay->allocations(), relay->delivered_locally()), "text/plain; version=0.0.4");
    });
    if (!http::Bind(http, http_listen).ok()) {
      std::fprintf(stderr, "weft-relay: cannot serve HTTP on %s\n", http_listen.c_str());
      return 1;
    }
    http_thread = std::jthread([&http] { http.listen_after_bind(); });
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "weft-relay: signal %d, stopping\n", sig);
  loop.request_stop();
  http.stop();
  return 0;
}
