// weft-relay: a STUN Binding server and TURN relay (RFC 8656) for node pairs with no
// direct path. It relays what agents send it (WireGuard ciphertext) and never holds a key.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

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
#include "lib/k8s/relay_watch.h"
#include "lib/sys/stop_signals.h"
#include "lib/turn/turn_credentials.h"
#include "relay/udp_relay.h"

namespace {

constexpr char kSynopsis[] =
    "weft-relay --secret-file FILE [--listen 0.0.0.0:3478] [--relay-ip IP | --relay-ip-from-node NODE] [flags]\n"
    "  --relay-ip-from-node (Kubernetes, hostNetwork): the relayed addresses are the Node's\n"
    "  ExternalIP (else its InternalIP), read from the API server at start.\n"
    "  The secret is the TURN REST shared secret (coturn's static-auth-secret): usernames\n"
    "  are \"<expiry>:<name>\", passwords base64(HMAC-SHA1(secret, username)). One secret per\n"
    "  line; during a rotation the file holds the new and the old (re-read every 10 s).\n"
    "  Peers: only the relays' relayed addresses (this relay's, --peer-relays,\n"
    "  --peer-relays-service) and --allowed-peer-ip; never loopback, unspecified,\n"
    "  link-local, multicast, broadcast or this relay's own ports (403).";

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "CIDR[,CIDR]" (a bare IP is a /32 or /128).
absl::Status AppendPrefixes(absl::string_view v, std::vector<weft::net::IpPrefix>& out) {
  for (absl::string_view item : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    auto p = weft::net::IpPrefix::ParseNetwork(item);
    if (!p.ok()) {
      auto ip = weft::net::IpAddress::Parse(item);
      if (!ip.ok()) return absl::InvalidArgumentError(absl::StrCat("\"", item, "\" is not an IP or CIDR"));
      p = weft::net::IpPrefix{*ip, ip->bit_length()};
    }
    out.push_back(*p);
  }
  return absl::OkStatus();
}

absl::Status ParsePortRange(absl::string_view v, uint16_t& lo_out, uint16_t& hi_out) {
  std::vector<std::string> r = absl::StrSplit(v, '-');
  int lo = 0, hi = 0;
  if (r.size() != 2 || !absl::SimpleAtoi(r[0], &lo) || !absl::SimpleAtoi(r[1], &hi) || lo < 1 || hi > 65535 ||
      lo > hi) {
    return absl::InvalidArgumentError("takes LOW-HIGH within 1-65535");
  }
  lo_out = static_cast<uint16_t>(lo);
  hi_out = static_cast<uint16_t>(hi);
  return absl::OkStatus();
}

std::string Metrics(const weft::turn::Counters& c, const weft::relay::TcpCounters& t, size_t allocations,
                    uint64_t local) {
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
                           {"no_channel", c.no_channel}, {"rate_limited", c.rate_limited}, {"quota", c.quota},
                           {"forbidden_peer", c.forbidden}, {"unknown_attribute", c.unknown_attribute},
                           {"refused", c.refused}, {"not_answered", c.not_answered},
                           {"tcp_queue_full", t.dropped}}) {
    absl::StrAppend(&out, "weft_relay_dropped_total{reason=\"", reason, "\"} ", n, "\n");
  }
  absl::StrAppend(&out, "# HELP weft_relay_tcp_connections TCP client connections open.\n",
                  "# TYPE weft_relay_tcp_connections gauge\nweft_relay_tcp_connections ", t.connections, "\n");
  absl::StrAppend(&out, "# HELP weft_relay_tcp_closed_total TCP connections refused or closed by the relay, by why.\n",
                  "# TYPE weft_relay_tcp_closed_total counter\n");
  for (auto [reason, n] : {std::pair{"over_cap", t.refused}, {"no_allocation", t.allocate_timeouts},
                           {"slow_frame", t.frame_timeouts}, {"bad_stream", t.bad_streams}}) {
    absl::StrAppend(&out, "weft_relay_tcp_closed_total{reason=\"", reason, "\"} ", n, "\n");
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  relay::RelayOptions o;
  o.listen = *net::Endpoint::Parse("0.0.0.0:3478");
  std::string secret_file, relay_ip, http_listen = "0.0.0.0:9477", relay_node, peer_relays_service;
  k8s::KubeConfig kube;
  int64_t max_allocations = o.turn.max_allocations, per_user = o.turn.max_allocations_per_user,
          bytes_per_second = o.turn.max_bytes_per_second, max_permissions = o.turn.max_permissions,
          max_tcp = o.max_tcp_connections, max_tcp_per_address = o.max_tcp_per_address,
          nonce_lifetime = o.turn.nonce_lifetime_s, credential_lifetime = o.turn.max_credential_lifetime_s;
  std::vector<std::string> peer_relays;
  bool peer_ports_set = false;
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
              [&o](absl::string_view v) { return ParsePortRange(v, o.port_min, o.port_max); })
      .Int("max-allocations", &max_allocations, 1, int64_t{1} << 40, "allocations in total")
      .Int("max-allocations-per-user", &per_user, 1, int64_t{1} << 40, "allocations per TURN username")
      .Int("max-bytes-per-second", &bytes_per_second, 0, int64_t{1} << 50, "per allocation; 0 is unlimited")
      .Int("max-permissions", &max_permissions, 1, 65536, "peer IPs per allocation (508 beyond)")
      .List("peer-relays", &peer_relays, "IP[,IP]", "the other relays' relayed IPs (peers allowed there)")
      .String("peer-relays-service", &peer_relays_service, "NS/NAME",
              "Kubernetes: the other relays are that Service's endpoints (at their Nodes' addresses)")
      .Custom("peer-ports", "LOW-HIGH", "--relay-ports", "the relayed ports of the peer relays",
              [&o, &peer_ports_set](absl::string_view v) {
                peer_ports_set = true;
                return ParsePortRange(v, o.turn.peers.relay_port_min, o.turn.peers.relay_port_max);
              })
      .Custom("allowed-peer-ip", "CIDR[,CIDR]", "", "more peers (any port); never loopback, multicast and the like",
              [&o](absl::string_view v) { return AppendPrefixes(v, o.turn.peers.allowed); })
      .Custom("denied-peer-ip", "CIDR[,CIDR]", "", "refused peers, even relays and --allowed-peer-ip",
              [&o](absl::string_view v) { return AppendPrefixes(v, o.turn.peers.denied); })
      .Bool("allow-loopback-peers", &o.turn.peers.allow_loopback, "tests and benchmarks on one host only")
      .Int("max-tcp-connections", &max_tcp, 1, 1 << 20, "TCP client connections in total")
      .Int("max-tcp-per-address", &max_tcp_per_address, 1, 1 << 20, "TCP client connections per source IP")
      .Int("nonce-lifetime", &nonce_lifetime, 10, 86400, "seconds; then 438 Stale Nonce")
      .Int("max-credential-lifetime", &credential_lifetime, 60, 365 * 86400,
           "seconds; a username expiring later than this from now is refused");
  if (auto exit_code = flags::ParseForMain(f, argc, argv)) return *exit_code;
  auto Usage = [&f](const std::string& why) { return flags::UsageError(f, why); };
  o.turn.max_allocations = max_allocations;
  o.turn.max_allocations_per_user = per_user;
  o.turn.max_bytes_per_second = bytes_per_second;
  o.turn.max_permissions = max_permissions;
  o.turn.nonce_lifetime_s = nonce_lifetime;
  o.turn.max_credential_lifetime_s = credential_lifetime;
  o.max_tcp_connections = max_tcp;
  o.max_tcp_per_address = max_tcp_per_address;
  if (!peer_ports_set) {
    o.turn.peers.relay_port_min = o.port_min;
    o.turn.peers.relay_port_max = o.port_max;
  }
  for (const std::string& p : peer_relays) {
    auto ip = net::IpAddress::Parse(p);
    if (!ip.ok()) return Usage("--peer-relays takes IP addresses");
    o.turn.peers.relay_ips.push_back(*ip);
  }
  if (secret_file.empty()) return Usage("--secret-file is required");
  const std::string secret_text = ReadFile(secret_file);
  auto secrets = turn::ParseSecrets(secret_text);
  if (!secrets.ok()) return Usage(absl::StrCat("--secret-file ", secret_file, ": ", secrets.status().message()));
  o.turn.secrets = *secrets;
  if (!relay_node.empty() || !peer_relays_service.empty()) {
    if (!relay_ip.empty() && !relay_node.empty()) return Usage("give --relay-ip or --relay-ip-from-node, not both");
    if (kube.server.empty()) {
      auto in_cluster = k8s::KubeConfig::InCluster();
      if (!in_cluster.ok()) return Usage(std::string(in_cluster.status().message()));
      kube = *in_cluster;
    }
  }
  if (!relay_node.empty()) {
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
  if (!http_listen.empty()) {
    auto h = net::Endpoint::Parse(http_listen);
    if (h.ok()) {
      o.turn.peers.own.push_back(*h);
      o.turn.peers.own.push_back(net::Endpoint{o.relay_ip, h->port});
    }
  }
  // Descriptors: one per allocation and per TCP client, and some.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  const sigset_t stop_signals = sys::BlockStopSignals();
  auto r = relay::UdpRelay::Create(o);
  if (!r.ok()) {
    std::fprintf(stderr, "weft-relay: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "weft-relay: STUN/TURN on %s:%u (UDP), relayed addresses %s:%u-%u\n",
               o.listen.ip.ToString().c_str(), (*r)->port(), o.relay_ip.ToString().c_str(), o.port_min, o.port_max);
  std::jthread loop([&](std::stop_token st) { (*r)->Run(st); });
  // The secret file is re-read: Kubernetes updates a mounted Secret in place.
  std::jthread secrets_thread([&r, &secret_file, last = secret_text](std::stop_token st) mutable {
    while (!st.stop_requested()) {
      for (int i = 0; i < 100 && !st.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::string text = ReadFile(secret_file);
      if (text == last) continue;
      auto s = turn::ParseSecrets(text);
      if (!s.ok()) {
        std::fprintf(stderr, "weft-relay: %s: %s (keeping the secrets in use)\n", secret_file.c_str(),
                     s.status().ToString().c_str());
      } else {
        std::fprintf(stderr, "weft-relay: %s changed: %zu secret(s) accepted now\n", secret_file.c_str(), s->size());
        (*r)->SetSecrets(*std::move(s));
      }
      last = std::move(text);
    }
  });
  std::unique_ptr<k8s::KubeClient> kube_client;
  std::unique_ptr<k8s::RelayWatch> relay_watch;
  std::jthread relay_watch_thread;
  if (!peer_relays_service.empty()) {
    const std::vector<std::string> parts = absl::StrSplit(peer_relays_service, '/');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return Usage("--peer-relays-service NS/NAME");
    kube_client = std::make_unique<k8s::KubeClient>(kube);
    relay::UdpRelay* relay = r->get();
    std::vector<net::IpAddress> fixed = o.turn.peers.relay_ips;
    relay_watch = std::make_unique<k8s::RelayWatch>(
        *kube_client, parts[0], parts[1],
        [&kube_client](const std::string& node) -> std::string {
          auto n = kube_client->Get("/api/v1/nodes/" + node);
          return n.ok() ? k8s::ReachableNodeAddress(*n) : "";
        },
        [relay, fixed](std::vector<net::Endpoint> relays) {
          std::vector<net::IpAddress> ips = fixed;
          std::string text;
          for (const auto& e : relays) {
            ips.push_back(e.ip);
            absl::StrAppend(&text, text.empty() ? "" : ", ", e.ip.ToString());
          }
          std::fprintf(stderr, "weft-relay: peer relays: %s\n", text.empty() ? "none" : text.c_str());
          relay->SetPeerRelays(std::move(ips));
        });
    relay_watch_thread = std::jthread([&relay_watch](std::stop_token st) { relay_watch->Run(st); });
  }
  httplib::Server http;
  std::jthread http_thread;
  if (!http_listen.empty()) {
    relay::UdpRelay* relay = r->get();
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    http.Get("/metrics", [relay](const httplib::Request&, httplib::Response& res) {
      res.set_content(Metrics(relay->counters(), relay->tcp_counters(), relay->allocations(), relay->delivered_locally()),
                      "text/plain; version=0.0.4");
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
  secrets_thread.request_stop();
  if (relay_watch_thread.joinable()) relay_watch_thread.request_stop();
  http.stop();
  return 0;
}
