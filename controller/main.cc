// weft-controller: the endpoint-state service, in one of two modes.
//   standalone (no Kubernetes): the controller is the registry, hands out pod CIDRs from
//     the cluster CIDR, checks a join token, keeps its state in a file.
//   kubernetes (--kubernetes): Nodes give pod CIDRs, agents prove who they are with
//     projected ServiceAccount tokens (TokenReview), one replica leads (a Lease) and
//     writes each node's WeftNode status; standbys answer UNAVAILABLE and are not ready.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <pthread.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "controller/agent_input.h"
#include "controller/controller_service.h"
#include "controller/kube_admission.h"
#include "controller/node_token.h"
#include "controller/kube_nodes.h"
#include "lib/k8s/relay_watch.h"
#include "lib/sys/stop_signals.h"
#include "lib/turn/turn_credentials.h"
#include "controller/relay_secret.h"
#include "controller/tls_bootstrap.h"
#include "controller/weftnode.h"
#include "controller/weftnode_writer.h"
#include "lib/flags/flags.h"
#include "lib/http/http_listen.h"
#include "lib/k8s/api_status.h"
#include "lib/k8s/lease.h"

namespace {

constexpr char kSynopsis[] =
    "weft-controller --cluster-cidr CIDR[,CIDR] (--tls-cert FILE --tls-key FILE | --insecure) [flags]\n"
    "  standalone:          --join-token-file FILE [--node-prefix 24] [--node-prefix-v6 64] [--state-file FILE]\n"
    "  kubernetes:          --kubernetes [--kube-api URL --kube-token-file FILE --kube-ca-file FILE]\n"
    "                       [--tls-secret weft-controller-tls --tls-ca-configmap weft-ca] (instead of\n"
    "                       --tls-cert/--tls-key) [--relay-service NS/NAME --relay-secret NAME]";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

void Log(const std::string& s) { std::fprintf(stderr, "weft-controller: %s\n", s.c_str()); }

// "IP:PORT" items separated by commas or whitespace (--relay, --relay-file).
absl::StatusOr<std::vector<weft::net::Endpoint>> ParseRelays(const std::string& text) {
  std::vector<weft::net::Endpoint> out;
  for (absl::string_view item : absl::StrSplit(text, absl::ByAnyChar(", \t\n"), absl::SkipEmpty())) {
    auto e = weft::net::Endpoint::Parse(item);
    if (!e.ok() || !e->ip.is_v4() || e->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("relay \"", item, "\" is not IPv4:PORT"));
    }
    out.push_back(*e);
  }
  return out;
}

std::unique_ptr<grpc::Server> g_server;

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  bool status_from_network = false, node_tokens_only = false;
  std::string print_node_token;
  std::string listen = "0.0.0.0:7443", token_file, cluster, cert, key, state_file, status_listen, relay_secret_file,
              relay_service, relay_file, relay_secret_name;
  std::vector<net::Endpoint> relays;
  int node_prefix = 24, node_prefix_v6 = 64;
  bool insecure = false, kubernetes = false;
  k8s::KubeConfig kube;
  k8s::ElectorOptions elector;
  controller::AdmissionOptions admission;
  controller::WriterOptions writer_opts;
  controller::TlsBootstrapOptions tls_boot;
  std::chrono::milliseconds aws_poll(30000);
  tls_boot.secret.clear();
  if (const char* pod = std::getenv("POD_NAME")) elector.identity = pod;
  if (const char* ns = std::getenv("POD_NAMESPACE")) elector.lease_namespace = ns;
  std::vector<std::string> tls_dns_names;
  int lease_ms = 15000, status_interval_ms = 2000, aws_poll_ms = 30000, writes_per_second = 20;
  flags::FlagSet f("weft-controller", kSynopsis);
  f.String("cluster-cidr", &cluster, "CIDR[,CIDR]",
           "the pods' addresses (required; standalone mode hands out blocks of it)")
      .String("listen", &listen, "ADDR:PORT", "the gRPC endpoint")
      .String("tls-cert", &cert, "FILE", "TLS certificate for the gRPC endpoint")
      .String("tls-key", &key, "FILE", "its key")
      .Bool("insecure", &insecure, "no TLS (a lab)")
      .String("status-listen", &status_listen, "ADDR:PORT",
              "GET /healthz, /readyz, /metrics (anyone who reaches it); GET /status and POST /forget?node=NAME "
              "(loopback peers only: kubectl port-forward or the host)")
      .Bool("status-from-network", &status_from_network,
            "serve GET /status (every node's endpoints and NAT verdicts) to any peer, not only loopback")
      .String("join-token-file", &token_file, "FILE",
              "standalone: the cluster's join token; agents present it, or their node's own token")
      .Bool("node-tokens-only", &node_tokens_only,
            "standalone: refuse the shared join token from agents; each node joins with its own token only")
      .String("print-node-token", &print_node_token, "NODE",
              "standalone: print NODE's own token (derived from the join token; it admits NODE only) and exit")
      .Int("node-prefix", &node_prefix, 1, 32, "standalone: the size of each node's block of the IPv4 cluster CIDR")
      .Int("node-prefix-v6", &node_prefix_v6, 1, 128,
           "standalone: the size of each node's block of the IPv6 cluster CIDR (dual-stack or IPv6-only)")
      .String("state-file", &state_file, "FILE", "standalone: durable state")
      .Custom("relay", "IP:PORT[,IP:PORT]", "", "TURN relays handed to agents",
              [&relays](absl::string_view v) -> absl::Status {
                auto r = ParseRelays(std::string(v));
                if (!r.ok()) return r.status();
                if (r->empty()) return absl::InvalidArgumentError("needs IP:PORT[,IP:PORT]");
                relays.insert(relays.end(), r->begin(), r->end());
                return absl::OkStatus();
              })
      .String("relay-file", &relay_file, "FILE", "relays, IP:PORT per line, re-read on SIGHUP")
      .String("relay-secret-file", &relay_secret_file, "FILE", "the relays' TURN shared secret")
      .String("relay-service", &relay_service, "NS/NAME", "Kubernetes: the relays are that Service's endpoints")
      .String("relay-secret", &relay_secret_name, "NAME",
              "Kubernetes: the relays' shared secret in this Secret (created once if missing)")
      .Bool("kubernetes", &kubernetes, "Kubernetes mode")
      .String("kube-api", &kube.server, "URL", "the API server (default: in-cluster)")
      .String("kube-token-file", &kube.token_file, "FILE", "bearer token for --kube-api")
      .String("kube-ca-file", &kube.ca_file, "FILE", "CA for --kube-api")
      .String("identity", &elector.identity, "NAME", "this replica's name in the Lease ($POD_NAME or hostname)")
      .String("lease-namespace", &elector.lease_namespace, "NS", "the Lease's namespace")
      .String("lease-name", &elector.lease_name, "NAME", "the Lease")
      .Int("lease-duration-ms", &lease_ms, 1000, 3600000, "leader lease; renew deadline 2/3 of it")
      .String("agent-audience", &admission.audience, "AUDIENCE", "the audience agents' tokens must have")
      .String("agent-service-account", &admission.service_account, "USER", "the only identity admitted as an agent")
      .String("agent-daemonset", &admission.daemonset, "NAME",
              "the agent DaemonSet (in the agent ServiceAccount's namespace): an agent's token must be bound to one of "
              "its Pods, on the node the agent claims")
      .Int("status-interval-ms", &status_interval_ms, 0, 3600000, "at most one WeftNode status write per node per interval")
      .Int("status-writes-per-second", &writes_per_second, 1, 100000, "cluster-wide WeftNode status write budget")
      .Int("aws-node-poll-ms", &aws_poll_ms, 100, 86400000, "how often aws-node's SNAT settings are read")
      .String("tls-secret", &tls_boot.secret, "NAME", "Kubernetes: bootstrap TLS into this Secret")
      .String("tls-ca-configmap", &tls_boot.ca_configmap, "NAME", "Kubernetes: publish the CA in this ConfigMap")
      .List("tls-dns-names", &tls_dns_names, "NAME", "the certificate's DNS names");
  if (auto exit_code = flags::ParseForMain(f, argc, argv)) return *exit_code;
  auto Usage = [&f](const std::string& why) { return flags::UsageError(f, why); };
  if (f.WasSet("lease-duration-ms")) {
    elector.lease_duration = std::chrono::milliseconds(lease_ms);
    elector.renew_deadline = std::chrono::milliseconds(lease_ms * 2 / 3);
    elector.retry_period = std::chrono::milliseconds(std::max(100, lease_ms / 8));
  }
  if (f.WasSet("status-interval-ms")) writer_opts.per_node_interval = std::chrono::milliseconds(status_interval_ms);
  if (f.WasSet("status-writes-per-second")) writer_opts.writes_per_second = writes_per_second;
  aws_poll = std::chrono::milliseconds(aws_poll_ms);
  if (f.WasSet("tls-dns-names")) tls_boot.dns_names = tls_dns_names;
  std::vector<std::string> cluster_cidrs;
  for (absl::string_view c : absl::StrSplit(cluster, ',', absl::SkipEmpty())) {
    auto p = net::IpPrefix::ParseNetwork(c);
    if (!p.ok()) return Usage("--cluster-cidr: " + std::string(p.status().message()));
    cluster_cidrs.push_back(p->ToString());
  }
  if (!print_node_token.empty()) {
    if (token_file.empty()) return Usage("--print-node-token needs --join-token-file");
    const std::string token = ReadFile(token_file);
    if (token.size() < 16) return Usage("the join token must be at least 16 characters");
    std::printf("%s\n", controller::NodeToken(token, print_node_token).c_str());
    return 0;
  }
  if (cluster_cidrs.empty()) return Usage("--cluster-cidr is required");
  const bool bootstrap_tls = !tls_boot.secret.empty();
  if (bootstrap_tls && !kubernetes) return Usage("--tls-secret needs --kubernetes");
  if (!insecure && !bootstrap_tls && (cert.empty() || key.empty())) {
    return Usage("give --tls-cert and --tls-key, or --tls-secret (Kubernetes), or --insecure for a lab");
  }

  std::unique_ptr<controller::ControllerService> service;
  std::unique_ptr<k8s::KubeClient> client, review_client, lease_client;
  std::unique_ptr<controller::NodeCache> nodes;
  std::unique_ptr<k8s::RelayWatch> relay_watch;
  std::unique_ptr<controller::TokenReviewAdmission> admit;
  std::unique_ptr<controller::WeftNodeWriter> writer;
  if (kubernetes) {
    if (kube.server.empty()) {
      auto in_cluster = k8s::KubeConfig::InCluster();
      if (!in_cluster.ok()) return Usage(std::string(in_cluster.status().message()));
      kube = *in_cluster;
    }
    if (elector.identity.empty()) {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      elector.identity = host;
    }
    client = std::make_unique<k8s::KubeClient>(kube);
    // The service is created before the cache that feeds it; the cache's callbacks run
    // only once Run starts, below.
    nodes = std::make_unique<controller::NodeCache>(*client, [&service, &relay_watch](const std::string& name,
                                                                                      const controller::NodeFacts* f) {
      controller::ControllerService* svc = service.get();
      if (svc == nullptr) return;
      if (f == nullptr) svc->RemoveNode(name);
      else svc->SetProviderId(name, f->provider_id);
      if (relay_watch) relay_watch->NodesChanged();
    });
    // Admission and the Lease each on a client (a connection and a lock) of their own: a
    // flood of Hellos waiting on TokenReviews never holds back the Lease's renewal.
    review_client = std::make_unique<k8s::KubeClient>(kube);
    lease_client = std::make_unique<k8s::KubeClient>(kube);
    admit = std::make_unique<controller::TokenReviewAdmission>(*review_client, *nodes, admission);
    service = std::make_unique<controller::ControllerService>(
        [a = admit.get()](const v1::Hello& h) { return a->Admit(h); }, cluster_cidrs);
    controller::ControllerService* svc = service.get();
    writer = std::make_unique<controller::WeftNodeWriter>(
        *client,
        [svc](const std::string& node) -> std::optional<nlohmann::json> {
          auto v = svc->View(node);
          if (!v) return std::nullopt;
          return controller::WeftNodeStatus(*v);
        },
        [n = nodes.get()](const std::string& node) {
          auto f = n->Find(node);
          return f ? f->uid : std::string();
        },
        writer_opts);
    service->SetOnChange([w = writer.get()](const std::string& node) { w->MarkDirty(node); });
  } else {
    if (token_file.empty()) return Usage("--join-token-file is required (or --kubernetes)");
    const std::string token = ReadFile(token_file);
    if (token.size() < 16) return Usage("the join token must be at least 16 characters");
    // One cluster CIDR per family: IPv4, IPv6, or both (dual-stack: every node gets a
    // block of each).
    std::vector<controller::PodCidrAllocator> pods;
    std::set<net::Family> families;
    for (const std::string& c : cluster_cidrs) {
      const net::IpPrefix cluster = *net::IpPrefix::ParseNetwork(c);
      if (!families.insert(cluster.family()).second) {
        return Usage("standalone mode takes one --cluster-cidr per address family");
      }
      auto p = controller::PodCidrAllocator::Create(cluster, cluster.address.is_v4() ? node_prefix : node_prefix_v6);
      if (!p.ok()) return Usage(std::string(p.status().message()));
      pods.push_back(*std::move(p));
    }
    service = std::make_unique<controller::ControllerService>(token, std::move(pods));
    service->SetNodeTokensOnly(node_tokens_only);
    if (!state_file.empty()) {
      if (absl::Status s = service->UseStateFile(state_file); !s.ok()) {
        Log(s.ToString());
        return 1;
      }
    }
  }
  if (!relay_file.empty()) {
    if (!relays.empty() || !relay_service.empty()) return Usage("give one of --relay, --relay-file, --relay-service");
    auto r = ParseRelays(ReadFile(relay_file));
    if (!r.ok()) return Usage("--relay-file " + relay_file + ": " + std::string(r.status().message()));
    relays = *r;
  }
  std::string relay_secret;
  if (!relays.empty() || !relay_service.empty() || !relay_file.empty()) {
    if (!relay_secret_name.empty()) {
      if (!kubernetes || !relay_secret_file.empty()) {
        return Usage("--relay-secret NAME needs --kubernetes (and replaces --relay-secret-file)");
      }
      absl::StatusOr<std::string> s;
      for (int attempt = 0; attempt < 60; ++attempt) {  // bounded: about a minute for the API server
        s = controller::EnsureRelaySecret(*client, elector.lease_namespace, relay_secret_name);
        if (s.ok() || absl::IsFailedPrecondition(s.status())) break;
        Log("relay Secret " + elector.lease_namespace + "/" + relay_secret_name + ": " + s.status().ToString());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      if (!s.ok()) {
        Log("relay Secret: " + s.status().ToString());
        return 1;
      }
      relay_secret_file.clear();
      relay_secret = *s;
    } else {
      auto secrets = turn::ParseSecrets(ReadFile(relay_secret_file));  // the first issues (a rotation)
      if (secrets.ok()) relay_secret = secrets->front();
    }
    if (relay_secret.size() < 16) {
      return Usage("relays need --relay-secret or --relay-secret-file (the relays' shared secret, 16+ characters)");
    }
    service->SetRelays(relays, relay_secret);
  }
  service->SetLog(Log);  // joins and refusals, rate-limited
  if (!relay_service.empty()) {
    const std::vector<std::string> parts = absl::StrSplit(relay_service, '/');
    if (!kubernetes || parts.size() != 2 || parts[0].empty() || parts[1].empty() || !relays.empty()) {
      return Usage("--relay-service NAMESPACE/NAME needs --kubernetes (and replaces --relay)");
    }
    relay_watch = std::make_unique<k8s::RelayWatch>(
        *client, parts[0], parts[1],
        [n = nodes.get()](const std::string& node) {
          auto f = n->Find(node);
          return f ? f->reachable_ip : std::string();
        },
        [svc = service.get(), relay_secret, relay_service](std::vector<net::Endpoint> list) {
          std::string shown;
          for (const auto& r : list) shown += (shown.empty() ? "" : ", ") + r.ToString();
          Log("relays (Service " + relay_service + "): " + (shown.empty() ? "none ready" : shown));
          svc->SetRelays(std::move(list), relay_secret);
        });
  }
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (insecure) {
    creds = grpc::InsecureServerCredentials();
  } else if (bootstrap_tls) {
    tls_boot.ns = elector.lease_namespace;
    if (tls_boot.dns_names.empty()) {
      tls_boot.dns_names = {"weft-controller." + tls_boot.ns + ".svc", "weft-controller." + tls_boot.ns + ".svc.cluster.local"};
    }
    absl::StatusOr<controller::TlsMaterial> tls;
    for (int attempt = 0; attempt < 60; ++attempt) {  // bounded: about a minute for the API server
      tls = controller::EnsureTls(*client, tls_boot);
      if (tls.ok()) break;
      Log("TLS Secret " + tls_boot.ns + "/" + tls_boot.secret + ": " + tls.status().ToString());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (!tls.ok()) return 1;
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
    creds = grpc::SslServerCredentials(opts);
  } else {
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({ReadFile(key), ReadFile(cert)});
    creds = grpc::SslServerCredentials(opts);
  }
  // SIGTERM/SIGINT are taken synchronously below (sigwait): block them before gRPC
  // starts its threads, so none of those gets them.
  // gRPC's threads each get a malloc arena, which keeps what an agent's large message
  // used after it is freed; few arenas, and large blocks mapped and unmapped at once, keep
  // the controller's memory what its state needs (a flooding agent's 1 MiB reports: +110
  // MB of retained arenas without this).
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  const sigset_t stop_signals = sys::BlockStopSignals({SIGHUP});  // SIGHUP: --relay-file read again
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(listen, creds, &port);
  b.RegisterService(service.get());
  b.SetMaxReceiveMessageSize(controller::kMaxAgentMessageBytes);
  // No window growth by bandwidth probing: what a paused (flooding) agent has sent waits
  // in its own buffers, not in ours.
  b.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  g_server = b.BuildAndStart();
  if (!g_server || port == 0) {
    Log("cannot listen on " + listen);
    return 1;
  }
  Log("serving on " + listen + " (" + (insecure ? "insecure" : bootstrap_tls ? "TLS from Secret " + tls_boot.secret : "TLS") + "), " +
      (kubernetes ? "kubernetes mode, identity " + elector.identity : "standalone mode"));
  httplib::Server status;
  std::thread status_thread;
  if (!status_listen.empty()) {
    if (!http::Bind(status, status_listen).ok()) {
      Log("cannot serve status on " + status_listen);
      return 1;
    }
    controller::ControllerService* svc = service.get();
    status.Get("/status", [svc, status_from_network](const httplib::Request& req, httplib::Response& res) {
      if (!status_from_network && !http::IsLoopbackPeer(req.remote_addr)) {
        res.status = 403;
        res.set_content("/status is served to loopback peers only (kubectl port-forward; or --status-from-network)\n",
                        "text/plain");
        return;
      }
      res.set_content(svc->StatusJson(), "application/json");
    });
    // Standalone: a node reinstalled with a new key is refused (its key is pinned on first
    // join) until the admin forgets it here, from the controller's host.
    status.Post("/forget", [svc, kubernetes](const httplib::Request& req, httplib::Response& res) {
      const std::string node = req.get_param_value("node");
      if (!http::IsLoopbackPeer(req.remote_addr) || kubernetes || node.empty()) {
        res.status = 403;
        res.set_content("POST /forget?node=NAME: standalone mode, from loopback only\n", "text/plain");
        return;
      }
      const bool known = svc->Forget(node);
      Log("forgot node " + node + (known ? "" : " (it was not known)") + " on an admin's request");
      res.set_content(known ? "forgotten\n" : "not known\n", "text/plain");
    });
    status.Get("/metrics", [svc](const httplib::Request&, httplib::Response& res) {
      res.set_content(svc->MetricsText(), "text/plain; version=0.0.4");
    });
    status.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    // Ready = serving agents: the leader. A Service in front of the replicas then sends
    // agents to the leader only.
    status.Get("/readyz", [svc](const httplib::Request&, httplib::Response& res) {
      const bool ready = svc->leading();
      res.status = ready ? 200 : 503;
      res.set_content(ready ? "leader\n" : "standby\n", "text/plain");
    });
    status_thread = std::thread([&status] { status.listen_after_bind(); });
  }
  std::jthread nodes_thread, writer_thread, elector_thread, aws_thread, relay_thread, renew_thread;
  if (relay_watch) relay_thread = std::jthread([r = relay_watch.get()](std::stop_token st) { r->Run(st); });
  if (!relay_secret.empty()) {
    // Credentials last 24 h: every connected agent gets fresh ones twice a day, so that
    // its next allocation (after a relay fails, or when it moves) is accepted.
    renew_thread = std::jthread([svc = service.get()](std::stop_token st) {
      for (auto since = std::chrono::steady_clock::now(); !st.stop_requested();
           std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
        if (std::chrono::steady_clock::now() - since < std::chrono::hours(12)) continue;
        since = std::chrono::steady_clock::now();
        svc->RenewRelayCredentials();
      }
    });
  }
  std::unique_ptr<k8s::LeaderElector> le;
  if (kubernetes) {
    nodes_thread = std::jthread([n = nodes.get()](std::stop_token st) { n->Run(st); });
    writer_thread = std::jthread([w = writer.get()](std::stop_token st) { w->Run(st); });
    // EKS: the AWS VPC CNI's SNAT settings, for the SNATRandomized condition.
    aws_thread = std::jthread([kc = client.get(), svc = service.get(), aws_poll](std::stop_token st) {
      while (!st.stop_requested()) {
        auto ds = kc->Get("/apis/apps/v1/namespaces/kube-system/daemonsets/aws-node");
        if (ds.ok()) {
          controller::AwsNodeSnat a = controller::AwsNodeSnatOf(*ds);
          svc->SetAwsNode(a.randomize_snat, a.external_snat);
        } else if (absl::IsNotFound(ds.status())) {
          svc->SetAwsNode(std::nullopt, false);
        }
        for (int i = 0; i < aws_poll.count() / 50 && !st.stop_requested(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    });
    controller::ControllerService* svc = service.get();
    controller::NodeCache* cache = nodes.get();
    controller::WeftNodeWriter* w = writer.get();
    k8s::KubeClient* kc = client.get();
    le = std::make_unique<k8s::LeaderElector>(*lease_client, elector, [=](bool leading) {
      if (!leading) {
        Log("lost the lease: standing by");
        w->SetEnabled(false);
        svc->SetLeading(false);
        return;
      }
      // Take over with what the last leader published, so agents keep every peer.
      std::vector<v1::NodeInfo> known;
      if (auto list = kc->Get(controller::kWeftNodes); list.ok()) {
        for (const auto& item : list->value("items", nlohmann::json::array())) {
          w->Seed(k8s::NameOf(item), item.value("status", nlohmann::json::object()));  // transition times
          auto info = controller::NodeInfoFromStatus(item.value("status", nlohmann::json::object()));
          if (info.ok() && cache->Find(info->name())) known.push_back(*info);
        }
      } else {
        Log("listing WeftNodes: " + list.status().ToString() + " (starting empty)");
      }
      Log("leading, with " + std::to_string(known.size()) + " nodes from WeftNode status");
      svc->SetLeading(true, known);
      w->SetEnabled(true);
    });
    elector_thread = std::jthread([&le, cache](std::stop_token st) {
      // Admission needs the Nodes: campaign once they are listed.
      while (!st.stop_requested() && !cache->synced()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!st.stop_requested()) le->Run(st);
    });
  }
  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    if (relay_file.empty()) continue;
    auto r = ParseRelays(ReadFile(relay_file));
    if (!r.ok()) {
      Log("SIGHUP: --relay-file " + relay_file + ": " + std::string(r.status().message()) + " (keeping the relays)");
      continue;
    }
    std::string shown;
    for (const auto& e : *r) shown += (shown.empty() ? "" : ", ") + e.ToString();
    Log("SIGHUP: relays from " + relay_file + ": " + (shown.empty() ? "none" : shown));
    service->SetRelays(*r, relay_secret);
  }
  Log("signal " + std::to_string(sig) + ", shutting down");
  // Release the Lease first: a standby takes over at once.
  elector_thread = {};
  g_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  writer_thread = {};
  aws_thread = {};
  relay_thread = {};
  renew_thread = {};
  nodes_thread = {};
  status.stop();
  if (status_thread.joinable()) status_thread.join();
  return 0;
}
