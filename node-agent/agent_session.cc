// The agent's controller session: connect (a new connection after every failed session),
// hello, the stream of state and directives, reconnect with backoff and jitter.
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/api/node_nat.h"
#include "lib/api/reconnect_backoff.h"
#include "lib/api/trailers.h"
#include "lib/sys/steady_ms.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"
#include "node-agent/node_files.h"
#include "node-agent/peer_guard.h"

namespace weft::agent {
namespace {

// Whether the controller replica that ended the stream said it does not lead.
bool IsStandby(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(api::kControllerRoleTrailer);
  return it != trailers.end() && it->second == api::kStandby;
}

}  // namespace

void Agent::ServeController(std::stop_token stop) {
  // The CA is read again before every connection: in Kubernetes it is a mounted
  // ConfigMap that may appear (or change) after the agent starts.
  std::string ca_loaded;
  std::unique_ptr<v1::EndpointService::Stub> stub;
  // Every attempt after a failed session uses a new channel, and so a new TCP connection:
  // behind a Service each connection may reach another replica, and one that reached a
  // standby (or a leader that lost its Lease) must not be reused. A channel of its own
  // subchannel pool really closes its connection when dropped; its own reconnect backoff
  // is kept short so that a controller that comes back is found within a second.
  auto new_channel = [this](const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    // gRPC gives each connection attempt (TCP and TLS handshakes) this long: its "minimum
    // reconnect backoff" is its connect timeout. At 100 ms an agent never joined a
    // controller more than a few tens of milliseconds away (or a busy one); 5 s covers a
    // satellite link's round trips and still moves on from a replica that vanished.
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    return v1::EndpointService::NewStub(grpc::CreateCustomChannel(opts_.controller, creds, args));
  };
  auto ensure_stub = [&](bool fresh) -> bool {
    if (opts_.insecure) {
      if (!stub || fresh) stub = new_channel(grpc::InsecureChannelCredentials());
      return true;
    }
    auto ca = ReadWholeFile(opts_.ca_file);
    if (!ca.ok() || ca->empty()) {
      Log(absl::StrCat("waiting for the controller's CA in ", opts_.ca_file));
      return false;
    }
    if (!stub || fresh || *ca != ca_loaded) {
      grpc::SslCredentialsOptions o;
      o.pem_root_certs = *ca;
      stub = new_channel(grpc::SslCredentials(o));
      ca_loaded = *ca;
    }
    return true;
  };
  std::mt19937 jitter(std::random_device{}());
  api::ReconnectBackoff backoff;
  bool fresh = false;
  while (!stop.stop_requested()) {
    const auto started = std::chrono::steady_clock::now();
    grpc::Status s(grpc::StatusCode::UNAVAILABLE, "no CA yet");
    bool standby = false;
    if (ensure_stub(fresh)) s = Session(*stub, stop, &standby);
    fresh = true;
    const auto wait = backoff.Next(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started), standby,
        static_cast<uint32_t>(jitter()));
    // Bounded, interruptible wait before reconnecting; the data plane is untouched.
    for (auto waited = std::chrono::milliseconds(0); waited < wait && !stop.stop_requested();
         waited += std::chrono::milliseconds(20)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

grpc::Status Agent::Session(v1::EndpointService::Stub& stub, std::stop_token stop, bool* standby) {
  *standby = false;
  grpc::ClientContext ctx;
  std::stop_callback cancel(stop, [&] { ctx.TryCancel(); });
  std::unique_ptr<Stream> stream = stub.Connect(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node(opts_.node);
  std::string token = opts_.join_token;
  if (!opts_.token_file.empty()) {
    auto t = ReadWholeFile(opts_.token_file);
    if (!t.ok()) {
      Log(absl::StrCat("reading the ServiceAccount token: ", t.status().ToString()));
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no token");
    }
    token = std::string(absl::StripAsciiWhitespace(*t));
  }
  hello.mutable_hello()->set_token(token);
  {
    absl::MutexLock l(&mu_);
    hello.mutable_hello()->set_resume_version(version_);
    hello.mutable_hello()->set_resume_epoch(epoch_);
    last_health_.Clear();  // a new stream (maybe a new leader) gets a full report
    for (const auto& c : pod_cidrs_) hello.mutable_hello()->add_pod_cidrs(c);
  }
  {
    absl::MutexLock l(&write_mu_);
    if (!stream->Write(hello)) {
      grpc::Status s = stream->Finish();
      *standby = IsStandby(ctx);
      if (!stop.stop_requested() && !*standby) LogConnectFailure(s);
      return s;
    }
    stream_ = stream.get();
  }
  last_connect_failure_.clear();
  // Health reports go out on their own thread, at most one per interval, when changed.
  // A peer's endpoint that moved goes out at once (at most one such report a second): a
  // peer seen at another port may be the first sign that its NAT changed (Reprobe).
  std::jthread health([&](std::stop_token st) {
    int64_t urgent_at = 0;
    while (!st.stop_requested()) {
      const int64_t due = sys::SteadyMs() + opts_.health_interval.count();
      while (!st.stop_requested() && sys::SteadyMs() < due) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (sys::SteadyMs() - urgent_at >= 1000 && health_now_.exchange(false)) {
          urgent_at = sys::SteadyMs();
          break;
        }
      }
      if (st.stop_requested()) break;
      if (auto h = HealthIfChanged()) {
        v1::AgentMessage msg;
        *msg.mutable_health() = *std::move(h);
        Write(msg);
      }
    }
  });
  v1::ControllerMessage m;
  while (stream->Read(&m)) OnMessage(m);
  health.request_stop();
  health.join();
  {
    absl::MutexLock l(&write_mu_);
    stream_ = nullptr;
  }
  grpc::Status s = stream->Finish();
  *standby = IsStandby(ctx);
  if (!stop.stop_requested()) Log(absl::StrCat("controller stream ended: ", s.error_message(), " (code ", s.error_code(), ")"));
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT && s.error_message().find("resume version") != std::string::npos) {
    // A controller that lost its history: start over with a snapshot.
    absl::MutexLock l(&mu_);
    version_ = 0;
  }
  return s;
}

void Agent::LogConnectFailure(const grpc::Status& s) {
  std::string why = absl::StrCat(s.error_message(), " (code ", s.error_code(), ")");
  const int64_t now = sys::SteadyMs();
  if (why == last_connect_failure_ && now - last_connect_failure_ms_ < 30000) return;
  Log(absl::StrCat("controller ", opts_.controller, " not reached: ", why, "; retrying"));
  last_connect_failure_ = std::move(why);
  last_connect_failure_ms_ = now;
}

void Agent::GuardNodes() {
  GuardedPeers g = GuardPeers(opts_.node, own_cidrs_, std::string(reinterpret_cast<const char*>(public_key_.bytes.data()), 32),
                              cluster_cidrs_, claimed_);
  for (const auto& [node, why] : g.refused) {
    if (auto it = refused_.find(node); it == refused_.end() || it->second != why) {
      Log(absl::StrCat("peer ", node, ": refused what the controller said of it: ", why));
    }
  }
  for (const auto& [node, why] : refused_) {
    if (!g.refused.contains(node)) Log(absl::StrCat("peer ", node, ": accepted again"));
  }
  refused_ = std::move(g.refused);
  nodes_ = std::move(g.nodes);
}

// Each message changes the state under mu_ and asks for a reconcile; the reconciler
// writes the device and routes once for a burst of them (a report's N-1 directives).
void Agent::OnMessage(const v1::ControllerMessage& m) {
  ++controller_messages_;
  switch (m.msg_case()) {
    case v1::ControllerMessage::kWelcome:
      if (absl::Status s = OnWelcome(m.welcome()); !s.ok()) {
        Log(absl::StrCat("applying controller state: ", s.ToString()));
        return;
      }
      AskReconcile(kReport);
      return;
    case v1::ControllerMessage::kRelays: {
      Log(absl::StrCat("relays from the controller: ", m.relays().relays_size()));
      absl::MutexLock l(&mu_);
      SetRelays(m.relays().relays());
      return;
    }
    case v1::ControllerMessage::kSnapshot: {
      absl::MutexLock l(&mu_);
      synced_ = true;
      claimed_.clear();
      for (const auto& n : m.snapshot().nodes()) claimed_[n.name()] = n;
      GuardNodes();
      version_ = m.snapshot().version();
      // Then the report, with the verdict: our NAT is open towards every peer we know.
      AskReconcile(kReport);
      return;
    }
    case v1::ControllerMessage::kDelta: {
      absl::MutexLock l(&mu_);
      for (const auto& n : m.delta().upserted()) claimed_[n.name()] = n;
      for (const auto& r : m.delta().removed()) {
        claimed_.erase(r);
        directives_.erase(r);
      }
      GuardNodes();
      version_ = m.delta().version();
      AskReconcile();
      return;
    }
    case v1::ControllerMessage::kDirective: {
      // The pair's path state machine sees the new decision in the reconcile: a changed
      // one ends a fall-back, and a relayed pair decided direct punches before it moves.
      absl::MutexLock l(&mu_);
      directives_[m.directive().peer()] = m.directive();
      AskReconcile();
      return;
    }
    case v1::ControllerMessage::kReprobe: {
      // A peer sees us at another port than STUN did: our NAT may map new flows per
      // destination now (keeping the old flows), or it bound our port to a peer's packet.
      // A probe on a fresh flow tells which, at once rather than at the next round.
      absl::MutexLock l(&mu_);
      if (reprobe_rate_.Take(sys::SteadyMs())) {
        Log(absl::StrCat("controller: ", absl::CHexEscape(m.reprobe().reason().substr(0, 200)),
                         "; probing a fresh flow"));
        if (auto seen = api::EndpointOf(m.reprobe().seen()); seen && sightings_.size() < 16) {
          sightings_.push_back(*seen);
        }
        probe_now_ = true;
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace weft::agent
