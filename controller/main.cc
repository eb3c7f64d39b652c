// weft-controller: the endpoint-state service. Standalone mode (no Kubernetes): the
// controller is the registry, hands out pod CIDRs from the cluster CIDR, and checks a
// join token. (Kubernetes mode comes with the control plane issue's second half.)
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "controller/controller_service.h"

namespace {

constexpr char kUsage[] =
    "usage: weft-controller --join-token-file FILE --cluster-cidr CIDR [--node-prefix 24]\n"
    "                       [--listen ADDR:PORT] (default 0.0.0.0:7443)\n"
    "                       [--tls-cert FILE --tls-key FILE | --insecure] [--state-file FILE]\n"
    "                       [--status-listen ADDR:PORT]   (GET /status: the cluster as JSON)\n";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "weft-controller: %s\n%s", why.c_str(), kUsage);
  return 2;
}

std::unique_ptr<grpc::Server> g_server;

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "0.0.0.0:7443", token_file, cluster, cert, key, state_file, status_listen;
  int node_prefix = 24;
  bool insecure = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--listen") listen = value();
    else if (a == "--join-token-file") token_file = value();
    else if (a == "--cluster-cidr") cluster = value();
    else if (a == "--node-prefix") {
      if (!absl::SimpleAtoi(value(), &node_prefix)) return Usage("--node-prefix takes a number");
    } else if (a == "--tls-cert") cert = value();
    else if (a == "--tls-key") key = value();
    else if (a == "--insecure") insecure = true;
    else if (a == "--state-file") state_file = value();
    else if (a == "--status-listen") status_listen = value();
    else return Usage("unknown flag " + a);
  }
  if (token_file.empty()) return Usage("--join-token-file is required");
  const std::string token = ReadFile(token_file);
  if (token.size() < 16) return Usage("the join token must be at least 16 characters");
  auto cidr = weft::net::IpPrefix::ParseNetwork(cluster);
  if (!cidr.ok()) return Usage("--cluster-cidr: " + std::string(cidr.status().message()));
  auto pods = weft::controller::PodCidrAllocator::Create(*cidr, node_prefix);
  if (!pods.ok()) return Usage(std::string(pods.status().message()));
  if (!insecure && (cert.empty() || key.empty())) return Usage("give --tls-cert and --tls-key (or --insecure for a lab)");

  weft::controller::ControllerService service(token, *std::move(pods));
  if (!state_file.empty()) {
    if (absl::Status s = service.UseStateFile(state_file); !s.ok()) {
      std::fprintf(stderr, "weft-controller: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (insecure) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({ReadFile(key), ReadFile(cert)});
    creds = grpc::SslServerCredentials(opts);
  }
  // SIGTERM/SIGINT are taken synchronously below (sigwait): block them before gRPC
  // starts its threads, so none of those gets them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(listen, creds, &port);
  b.RegisterService(&service);
  b.SetMaxReceiveMessageSize(1 << 20);
  g_server = b.BuildAndStart();
  if (!g_server || port == 0) {
    std::fprintf(stderr, "weft-controller: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::fprintf(stderr, "weft-controller: serving on %s (%s), cluster CIDR %s\n", listen.c_str(),
               insecure ? "insecure" : "TLS", cidr->ToString().c_str());
  httplib::Server status;
  std::thread status_thread;
  if (!status_listen.empty()) {
    const size_t colon = status_listen.rfind(':');
    int sport = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(status_listen.substr(colon + 1), &sport) ||
        !status.bind_to_port(status_listen.substr(0, colon).c_str(), sport)) {
      std::fprintf(stderr, "weft-controller: cannot serve status on %s\n", status_listen.c_str());
      return 1;
    }
    status.Get("/status", [&service](const httplib::Request&, httplib::Response& res) {
      res.set_content(service.StatusJson(), "application/json");
    });
    status.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    status_thread = std::thread([&status] { status.listen_after_bind(); });
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "weft-controller: signal %d, shutting down\n", sig);
  g_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  status.stop();
  if (status_thread.joinable()) status_thread.join();
  return 0;
}
