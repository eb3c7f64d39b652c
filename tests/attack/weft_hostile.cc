// weft-hostile: the attacker for the trust-boundary lab tests. It plays what the real
// binaries must not trust (test-only; never shipped in the image):
//
//   agent       an admitted node (valid join token) that reports what it should not:
//               another node's pod CIDR, the default route in halves, another node's
//               WireGuard key, 100 candidates. Prints the controller's verdict:
//               "status CODE: message".
//   controller  a controller (spoofed, or reached with --insecure) that welcomes an agent
//               with `--cluster-cidr` as given (nft syntax, say) or hands it a peer whose
//               pod CIDRs take the default route, and keeps the stream open; with
//               --flood N, then N directives flipping the pair and N Reprobes.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/flags/flags.h"
#include "lib/wireguard/key.h"
#include "weft/v1/weft.grpc.pb.h"

namespace {

using weft::v1::AgentMessage;
using weft::v1::ControllerMessage;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

std::string KeyBytes(const weft::wireguard::Key& k) { return std::string(reinterpret_cast<const char*>(k.bytes.data()), 32); }

int Agent(const std::string& controller, const std::string& ca_file, const std::string& token, const std::string& node,
          const std::string& attack, const std::string& victim_cidr, const std::string& victim_key,
          const std::string& own_key, int flood_seconds) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(ca_file) + "\n";
  auto stub = weft::v1::EndpointService::NewStub(grpc::CreateChannel(controller, grpc::SslCredentials(o)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(attack == "flood-health" ? flood_seconds + 20 : 10));
  auto stream = stub->Connect(&ctx);
  AgentMessage hello;
  hello.mutable_hello()->set_node(node);
  hello.mutable_hello()->set_token(token);
  stream->Write(hello);
  ControllerMessage in;
  if (!stream->Read(&in) || !in.has_welcome()) {
    grpc::Status s = stream->Finish();
    std::printf("status %d: %s\n", s.error_code(), s.error_message().c_str());
    return 0;
  }
  AgentMessage m;
  weft::v1::NodeInfo* n = m.mutable_node();
  n->set_name(node);
  n->set_wireguard_public_key(KeyBytes(*weft::wireguard::Key::PublicFrom(*weft::wireguard::Key::GeneratePrivate())));
  if (!own_key.empty()) {
    auto k = weft::wireguard::Key::FromBase64(own_key);
    if (!k.ok()) {
      std::fprintf(stderr, "--key: %s\n", k.status().ToString().c_str());
      return 2;
    }
    n->set_wireguard_public_key(KeyBytes(*k));
  }
  for (const auto& c : in.welcome().pod_cidrs()) n->add_pod_cidrs(c);
  auto* host = n->add_candidates();
  host->set_type(weft::v1::CANDIDATE_TYPE_HOST);
  host->mutable_endpoint()->set_ip("192.0.2.66");
  host->mutable_endpoint()->set_port(51820);
  n->mutable_nat()->set_mapping(weft::v1::NAT_MAPPING_NONE);
  if (attack == "cidr-of-victim") {
    n->add_pod_cidrs(victim_cidr);
  } else if (attack == "default-halves") {
    n->add_pod_cidrs("0.0.0.0/1");
    n->add_pod_cidrs("128.0.0.0/1");
  } else if (attack == "victim-key") {
    auto k = weft::wireguard::Key::FromBase64(victim_key);
    if (!k.ok()) {
      std::fprintf(stderr, "--victim-key: %s\n", k.status().ToString().c_str());
      return 2;
    }
    n->set_wireguard_public_key(KeyBytes(*k));
  } else if (attack == "candidates-100") {
    for (int i = 0; i < 99; ++i) *n->add_candidates() = *host;
  } else if (attack == "flood-health") {
    // Honest first, then health reports of almost 1 MiB as fast as 1,000 a second.
    stream->Write(m);
    AgentMessage h;
    for (int i = 0; i < 1900; ++i) {
      auto* p = h.mutable_health()->add_peers();
      p->set_peer("peer-" + std::to_string(i));
      p->set_reason(std::string(500, 'x'));
    }
    const std::string bytes = h.SerializeAsString();
    const auto start = std::chrono::steady_clock::now();
    int sent = 0;
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(flood_seconds)) {
      if (!stream->Write(h)) break;
      ++sent;
      std::this_thread::sleep_until(start + std::chrono::microseconds(1000LL * sent));  // at most 1,000/s
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("flood: sent %d health reports of %zu bytes in %.1f s\n", sent, bytes.size(), secs);
    ctx.TryCancel();
    grpc::Status s = stream->Finish();
    std::printf("status %d: %s\n", s.error_code(), s.error_message().c_str());
    return 0;
  } else if (attack != "none") {
    std::fprintf(stderr, "unknown --attack %s\n", attack.c_str());
    return 2;
  }
  stream->Write(m);
  // The verdict: the stream ends (refused), or stays (accepted) until the deadline.
  while (stream->Read(&in)) {
  }
  grpc::Status s = stream->Finish();
  std::printf("status %d: %s\n", s.error_code(), s.error_message().c_str());
  return 0;
}

class HostileController final : public weft::v1::EndpointService::Service {
 public:
  HostileController(std::vector<std::string> pod, std::vector<std::string> cluster, std::vector<std::string> peer_cidrs,
                    int flood)
      : pod_(std::move(pod)), cluster_(std::move(cluster)), peer_cidrs_(std::move(peer_cidrs)), flood_(flood) {}

  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<ControllerMessage, AgentMessage>* stream) override {
    AgentMessage hello;
    if (!stream->Read(&hello)) return grpc::Status::OK;
    std::fprintf(stderr, "weft-hostile: Hello from %s\n", hello.hello().node().c_str());
    ControllerMessage w;
    for (const auto& c : pod_) w.mutable_welcome()->add_pod_cidrs(c);
    for (const auto& c : cluster_) w.mutable_welcome()->add_cluster_cidrs(c);
    w.mutable_welcome()->set_epoch("hostile");
    stream->Write(w);
    ControllerMessage snap;
    snap.mutable_snapshot()->set_version(1);
    if (!peer_cidrs_.empty()) {
      // A peer that is public (so the pair is direct and planned at once) and claims
      // the given prefixes.
      weft::v1::NodeInfo* p = snap.mutable_snapshot()->add_nodes();
      p->set_name("mallory");
      p->set_wireguard_public_key(KeyBytes(*weft::wireguard::Key::PublicFrom(*weft::wireguard::Key::GeneratePrivate())));
      for (const auto& c : peer_cidrs_) p->add_pod_cidrs(c);
      auto* c = p->add_candidates();
      c->set_type(weft::v1::CANDIDATE_TYPE_HOST);
      c->mutable_endpoint()->set_ip("192.0.2.66");
      c->mutable_endpoint()->set_port(51820);
      p->mutable_nat()->set_mapping(weft::v1::NAT_MAPPING_NONE);
    }
    stream->Write(snap);
    if (!peer_cidrs_.empty()) {
      ControllerMessage d;
      d.mutable_directive()->set_peer("mallory");
      d.mutable_directive()->set_path(weft::v1::PATH_KIND_DIRECT);
      d.mutable_directive()->set_initiate(true);
      d.mutable_directive()->set_reason("mallory is public");
      stream->Write(d);
    }
    // --flood N: N directives for the pair, flipping between direct and relay, and N
    // Reprobes with text meant for a terminal, as fast as the stream takes them.
    for (int i = 0; i < flood_; ++i) {
      ControllerMessage d;
      d.mutable_directive()->set_peer("mallory");
      d.mutable_directive()->set_path(i % 2 == 0 ? weft::v1::PATH_KIND_RELAY : weft::v1::PATH_KIND_DIRECT);
      d.mutable_directive()->set_initiate(true);
      d.mutable_directive()->set_reason("flip " + std::to_string(i));
      if (!stream->Write(d)) break;
      ControllerMessage r;
      r.mutable_reprobe()->set_reason("\x1b[2J\rreprobe\n" + std::to_string(i));
      r.mutable_reprobe()->mutable_seen()->set_ip("192.0.2." + std::to_string(1 + i % 250));
      r.mutable_reprobe()->mutable_seen()->set_port(40000 + i % 20000);
      if (!stream->Write(r)) break;
    }
    if (flood_ > 0) std::fprintf(stderr, "weft-hostile: flooded %d directives and %d reprobes\n", flood_, flood_);
    AgentMessage in;
    while (!ctx->IsCancelled() && stream->Read(&in)) {
    }
    return grpc::Status::OK;
  }

 private:
  std::vector<std::string> pod_, cluster_, peer_cidrs_;
  int flood_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string mode, controller, ca_file, token_file, node, attack = "none", victim_cidr, victim_key, own_key, listen;
  int flood_seconds = 10;
  int flood = 0;
  std::vector<std::string> pod_cidrs, cluster_cidrs, peer_cidrs;
  weft::flags::FlagSet f("weft-hostile",
                         "weft-hostile --mode agent --controller ADDR --ca-file F --join-token-file F --node NAME "
                         "--attack KIND\n       weft-hostile --mode controller --listen ADDR --pod-cidr C "
                         "--cluster-cidr TEXT [--peer-cidr C ...]");
  f.String("mode", &mode, "agent|controller", "which side to attack from")
      .String("controller", &controller, "ADDR", "agent mode: the controller")
      .String("ca-file", &ca_file, "FILE", "agent mode: the controller's CA")
      .String("join-token-file", &token_file, "FILE", "agent mode: a valid join token")
      .String("node", &node, "NAME", "agent mode: the node to join as")
      .String("attack", &attack, "KIND",
              "agent mode: none, cidr-of-victim, default-halves, victim-key, candidates-100 or flood-health")
      .String("victim-cidr", &victim_cidr, "CIDR", "cidr-of-victim: the CIDR to claim")
      .String("victim-key", &victim_key, "BASE64", "victim-key: the key to claim")
      .String("key", &own_key, "BASE64", "agent mode: the node's own public key (default: a new one)")
      .Int("flood-seconds", &flood_seconds, 1, 600, "flood-health: for how long")
      .Int("flood", &flood, 0, 1000000, "controller mode: then N directives (flipping) and N Reprobes, at once")
      .String("listen", &listen, "ADDR", "controller mode: where to serve (insecure)")
      .List("pod-cidr", &pod_cidrs, "TEXT", "controller mode: Welcome.pod_cidrs, as given")
      .List("cluster-cidr", &cluster_cidrs, "TEXT", "controller mode: Welcome.cluster_cidrs, as given")
      .List("peer-cidr", &peer_cidrs, "TEXT", "controller mode: a peer \"mallory\" claiming these");
  if (auto code = weft::flags::ParseForMain(f, argc, argv)) return *code;
  if (mode == "agent") {
    return Agent(controller, ca_file, ReadFile(token_file), node, attack, victim_cidr, victim_key, own_key,
                 flood_seconds);
  }
  if (mode == "controller") {
    HostileController svc(pod_cidrs, cluster_cidrs, peer_cidrs, flood);
    grpc::ServerBuilder b;
    b.AddListeningPort(listen, grpc::InsecureServerCredentials());
    b.RegisterService(&svc);
    auto server = b.BuildAndStart();
    if (!server) return 1;
    std::fprintf(stderr, "weft-hostile: serving on %s\n", listen.c_str());
    server->Wait();
    return 0;
  }
  return weft::flags::UsageError(f, "--mode agent or --mode controller");
}
