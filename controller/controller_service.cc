#include "controller/controller_service.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controller/agent_input.h"
#include "controller/node_token.h"
#include "controller/weftnode.h"
#include "lib/api/node_nat.h"
#include "lib/api/trailers.h"
#include "lib/nat/path_strategy.h"
#include "lib/sys/steady_ms.h"
#include "lib/sys/token_bucket.h"
#include "lib/turn/turn_credentials.h"
#include "nlohmann/json.hpp"

namespace weft::controller {
namespace {

std::string NewEpoch() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> d;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(d(rd)));
  return buf;
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

// One agent's stream. It owns itself (self_) until gRPC's OnDone; an admission check in
// flight holds it too, so it is destroyed only when both are done with it.
//
// Lifecycle rules (the reactor may be told to finish from several threads: its own
// reactions, the service under mu_, an admission thread):
//  - Finish is called once, under write_mu_; nothing is started after it.
//  - While an admission check runs, a finish is deferred (pending_finish_) and carried out
//    by the admission thread when it is done, so it never reads or starts a read on a
//    stream that another thread finished.
//  - node_ is set by the service under its lock, just before the stream is registered, so
//    Leave always finds and removes what was registered.
class AgentStream : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  static AgentStream* Start(ControllerService* service, grpc::CallbackServerContext* ctx) {
    std::shared_ptr<AgentStream> s(new AgentStream(service, ctx));
    s->self_ = s;
    service->Arrived(s.get());
    s->StartRead(&s->in_);
    return s.get();
  }

  // Queues a message; starts writing if idle. Called with the service's lock held.
  void QueueLocked(v1::ControllerMessage m) {
    std::lock_guard<std::mutex> l(write_mu_);
    if (finished_) return;
    out_.push_back(std::move(m));
    if (!writing_) WriteNext();
  }
  // Ends the stream with `status` (no more reads or writes).
  void FinishWith(const grpc::Status& status) {
    std::lock_guard<std::mutex> l(write_mu_);
    FinishLocked(status);
  }
  // The node this stream speaks for: set (service lock held) when it joins.
  const std::string& node() const { return node_; }
  void SetNodeLocked(const std::string& node) { node_ = node; }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the agent closed its side, or the call is going away
      FinishWith(grpc::Status::OK);
      return;
    }
    if (!joined_ && in_.msg_case() == v1::AgentMessage::kHello && service_->admit_) {
      Admit();
      return;
    }
    grpc::Status s = grpc::Status::OK;
    // Past the rate an honest agent sends at, a message is dropped (counted) and the
    // next one is not read before the service's next tick (100 ms): the stream stays,
    // and what a flooding agent costs is bounded in CPU and memory (the rest waits in
    // its own send buffer, HTTP/2 flow control).
    bool pause = false;
    if (joined_ && !rate_.Take(sys::SteadyMs())) {
      service_->input_dropped_rate_.fetch_add(1, std::memory_order_relaxed);
      pause = true;
      service_->Pause(this);
    } else {
      s = Handle(in_);
    }
    // A fresh message for the next read: parsing into a used one keeps the largest
    // message's memory (repeated fields keep their elements) for the stream's life, which
    // at 5,000 agents with 5,000-peer health reports would be gigabytes.
    in_ = v1::AgentMessage();
    std::lock_guard<std::mutex> l(write_mu_);
    if (!s.ok()) {
      FinishLocked(s);
    } else if (!finished_ && !pause) {
      StartRead(&in_);
    }
  }
  // The service's tick: reading again after a pause (service lock held).
  void ResumeLocked() {
    std::lock_guard<std::mutex> l(write_mu_);
    if (!finished_) StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(write_mu_);
    writing_ = false;
    if (!ok) return;  // the stream is going away; OnDone follows
    if (!out_.empty()) out_.pop_front();
    if (!out_.empty() && !finished_) WriteNext();
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override {
    service_->Leave(this);
    std::shared_ptr<AgentStream> last;  // may be the last reference: released on return
    {
      std::lock_guard<std::mutex> l(write_mu_);  // whoever called Finish has let go
      last = std::move(self_);
    }
  }

 private:
  AgentStream(ControllerService* service, grpc::CallbackServerContext* ctx) : service_(service), ctx_(ctx) {}

  // Kubernetes mode: the first Hello goes to the admission pool (TokenReview blocks).
  void Admit() {
    if (absl::Status bad = CheckHello(in_.hello()); !bad.ok()) {
      service_->input_refused_.fetch_add(1, std::memory_order_relaxed);
      FinishWith(ToGrpc(bad));
      return;
    }
    // A standby serves nobody: refused before any TokenReview, so the agent opens a new
    // connection at once (a Service in front of the replicas picks one per connection).
    if (!service_->leading()) {
      FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller is a standby; the leader serves agents"));
      return;
    }
    {
      std::lock_guard<std::mutex> l(write_mu_);
      if (finished_) return;
      admitting_ = true;
    }
    std::shared_ptr<AgentStream> self = self_;  // OnDone cannot run during this reaction
    // The connection is the lane (ctx_->peer(): "ipv4:ADDR:PORT"): one connection's flood
    // queues behind itself.
    if (!service_->admission_->TrySubmit(ctx_->peer(), [self, hello = in_.hello()] { self->AdmitOnPool(hello); })) {
      std::lock_guard<std::mutex> l(write_mu_);
      admitting_ = false;
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many agents joining at once; retry"));
    }
  }
  void AdmitOnPool(const v1::Hello& hello) {
    grpc::Status s(grpc::StatusCode::CANCELLED, "the agent went away");
    if (!cancelled_) {
      auto cidrs = service_->admit_(hello);
      s = cidrs.ok() ? service_->JoinAdmitted(this, hello, *cidrs) : ToGrpc(cidrs.status());
      service_->NoteJoin(hello, s);
    }
    std::lock_guard<std::mutex> l(write_mu_);
    admitting_ = false;
    if (pending_finish_) {
      FinishLocked(*pending_finish_);
    } else if (!s.ok()) {
      FinishLocked(s);
    } else if (!finished_) {
      joined_ = true;
      StartRead(&in_);
    }
  }
  void FinishLocked(const grpc::Status& status) {  // write_mu_ held
    if (finished_) return;
    if (admitting_) {  // the admission thread finishes it when it is done
      if (!pending_finish_) pending_finish_ = status;
      return;
    }
    finished_ = true;
    // A replica that does not lead says so in a typed trailer, so the agent retries at
    // once on a new connection instead of backing off.
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !service_->leading_.load()) {
      ctx_->AddTrailingMetadata(api::kControllerRoleTrailer, api::kStandby);
    }
    Finish(status);
  }
  grpc::Status Handle(const v1::AgentMessage& m) {
    if (!joined_) {
      if (m.msg_case() != v1::AgentMessage::kHello) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Hello");
      }
      grpc::Status s = service_->Join(this, m.hello());
      service_->NoteJoin(m.hello(), s);
      joined_ = s.ok();
      return s;
    }
    switch (m.msg_case()) {
      case v1::AgentMessage::kHello:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello sent twice on one stream");
      case v1::AgentMessage::kNode:
        return service_->Update(node_, m.node());
      case v1::AgentMessage::kHealth:
        service_->Health(node_, m.health());
        return grpc::Status::OK;
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty AgentMessage");
    }
  }
  void WriteNext() {  // write_mu_ held
    writing_ = true;
    StartWrite(&out_.front());
  }

  ControllerService* service_;
  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<AgentStream> self_;  // until OnDone
  v1::AgentMessage in_;
  bool joined_ = false;                // reactions and the admission thread, never at once
  std::string node_;                   // written under the service's lock before registration
  std::atomic<bool> cancelled_{false};
  sys::TokenBucket rate_{kAgentMessagesPerSecond, kAgentMessageBurst};  // reactions only
  std::mutex write_mu_;
  std::deque<v1::ControllerMessage> out_;  // front() is being written while writing_; write_mu_
  bool writing_ = false;                   // write_mu_
  bool finished_ = false;                  // write_mu_
  bool admitting_ = false;                 // write_mu_
  std::optional<grpc::Status> pending_finish_;  // write_mu_
};

ControllerService::ControllerService(std::string join_token, std::vector<PodCidrAllocator> pods)
    : join_token_(std::move(join_token)), epoch_(NewEpoch()), pods_(std::move(pods)) {
  StartTicker();
}

ControllerService::ControllerService(std::string join_token, PodCidrAllocator pods)
    : ControllerService(std::move(join_token), std::vector<PodCidrAllocator>{std::move(pods)}) {}

ControllerService::ControllerService(Admit admit, std::vector<std::string> cluster_cidrs)
    : admit_(std::move(admit)),
      cluster_cidrs_(std::move(cluster_cidrs)),
      leading_(false),
      epoch_(NewEpoch()),
      admission_(std::make_unique<AdmissionPool>(kAdmissionThreads, kAdmissionQueue, kAdmissionPerConnection)) {
  StartTicker();
}

void ControllerService::StartTicker() {
  ticker_ = std::jthread([this](std::stop_token st) {
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Tick();
    }
  });
}

void ControllerService::Arrived(AgentStream* stream) {
  std::lock_guard<std::mutex> l(mu_);
  unjoined_[stream] = sys::SteadyMs();
}

void ControllerService::Pause(AgentStream* stream) {
  std::lock_guard<std::mutex> l(mu_);
  paused_.insert(stream);
}

void ControllerService::Tick() {
  std::lock_guard<std::mutex> l(mu_);
  for (AgentStream* s : paused_) s->ResumeLocked();
  paused_.clear();
  const int64_t now = sys::SteadyMs();
  for (auto it = unjoined_.begin(); it != unjoined_.end();) {
    if (now - it->second < hello_deadline_ms_.load()) {
      ++it;
      continue;
    }
    input_refused_.fetch_add(1, std::memory_order_relaxed);
    it->first->FinishWith(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no Hello (or no admission) in time"));
    it = unjoined_.erase(it);
  }
}

ControllerService::~ControllerService() = default;

void ControllerService::SetRelays(std::vector<net::Endpoint> relays, std::string secret) {
  std::lock_guard<std::mutex> l(mu_);
  if (relays == relays_ && secret == relay_secret_) return;
  relays_ = std::move(relays);
  relay_secret_ = std::move(secret);
  // Connected agents get the new list now (those that join later, in Welcome): a node
  // whose relay is gone moves to another, a node without one allocates.
  PushRelaysLocked();
}

void ControllerService::RenewRelayCredentials() {
  std::lock_guard<std::mutex> l(mu_);
  if (!relays_.empty()) PushRelaysLocked();
}

void ControllerService::PushRelaysLocked() {
  for (auto& [name, stream] : streams_) {
    v1::ControllerMessage m;
    *m.mutable_relays()->mutable_relays() = RelayServersLocked(name);
    stream->QueueLocked(std::move(m));
  }
}

std::vector<net::Endpoint> ControllerService::relays() const {
  std::lock_guard<std::mutex> l(mu_);
  return relays_;
}

google::protobuf::RepeatedPtrField<v1::RelayServer> ControllerService::RelayServersLocked(const std::string& node) const {
  google::protobuf::RepeatedPtrField<v1::RelayServer> out;
  const int64_t expiry = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count() + 24 * 3600;
  const turn::Credentials c = turn::IssueCredentials(relay_secret_, node, expiry);
  for (const auto& r : relays_) {
    v1::RelayServer* rs = out.Add();
    rs->mutable_address()->set_ip(r.ip.ToString());
    rs->mutable_address()->set_port(r.port);
    rs->set_username(c.username);
    rs->set_password(c.password);
  }
  return out;
}

void ControllerService::SetOnChange(OnChange f) {
  std::lock_guard<std::mutex> l(mu_);
  on_change_ = std::move(f);
}

void ControllerService::NotifyLocked(const std::string& node) {
  if (on_change_) on_change_(node);
}

bool ControllerService::leading() const { return leading_.load(); }

void ControllerService::SetLeading(bool leading, const std::vector<v1::NodeInfo>& nodes) {
  std::lock_guard<std::mutex> l(mu_);
  if (leading == leading_) return;
  leading_ = leading;
  if (!leading) {
    for (auto& [name, stream] : streams_) {
      stream->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller is no longer the leader"));
    }
    return;
  }
  // A new term: a new epoch, and the nodes as the last leader published them, so that
  // resuming agents get a snapshot that changes none of their peers.
  epoch_ = NewEpoch();
  store_ = EndpointStore();
  health_.clear();
  for (const auto& n : nodes) store_.Upsert(n);
  for (const auto& [name, n] : store_.nodes()) NotifyLocked(name);
}

void ControllerService::RemoveNode(const std::string& node) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t before = store_.version();
  if (!store_.Remove(node).ok()) return;
  health_.erase(node);
  reprobes_asked_.erase(node);
  assigned_.erase(node);
  auto deltas = store_.DeltasSince(before);
  for (auto& [name, stream] : streams_) {
    for (const auto& d : **deltas) {
      v1::ControllerMessage m;
      *m.mutable_delta() = d;
      stream->QueueLocked(std::move(m));
    }
  }
  if (auto it = streams_.find(node); it != streams_.end()) {
    it->second->FinishWith(grpc::Status(grpc::StatusCode::NOT_FOUND, "the Node was deleted"));
  }
  for (const auto& [name, n] : store_.nodes()) NotifyLocked(name);
}

bool ControllerService::Forget(const std::string& node) {
  bool known;
  {
    std::lock_guard<std::mutex> l(mu_);
    known = store_.Find(node) != nullptr;
  }
  RemoveNode(node);
  std::lock_guard<std::mutex> l(mu_);
  SaveLocked();
  return known;
}

void ControllerService::SetProviderId(const std::string& node, const std::string& provider_id) {
  std::lock_guard<std::mutex> l(mu_);
  std::string& old = provider_ids_[node];
  if (old == provider_id) return;
  old = provider_id;
  NotifyLocked(node);
}

void ControllerService::SetAwsNode(std::optional<std::string> randomize_snat, bool external_snat) {
  std::lock_guard<std::mutex> l(mu_);
  if (aws_randomize_snat_ == randomize_snat && aws_external_snat_ == external_snat) return;
  aws_randomize_snat_ = std::move(randomize_snat);
  aws_external_snat_ = external_snat;
  for (const auto& [name, n] : store_.nodes()) NotifyLocked(name);
}

nat::SnatDiagnosis ControllerService::DiagnoseLocked(const v1::NodeInfo& node) const {
  nat::SnatEvidence e;
  const v1::NatReport& r = node.nat();
  for (const auto& c : node.candidates()) {
    if (c.type() == v1::CANDIDATE_TYPE_HOST && c.endpoint().port() != 0) e.port = static_cast<uint16_t>(c.endpoint().port());
  }
  e.endpoint_dependent = r.mapping() == v1::NAT_MAPPING_ENDPOINT_DEPENDENT;
  e.udp_blocked = r.udp_blocked();
  e.node_rules.assign(node.snat().randomizing_rules().begin(), node.snat().randomizing_rules().end());
  e.mitigation_installed = node.snat().mitigation_installed();
  e.endpoint_dependent_before_mitigation =
      node.snat().has_before_mitigation() && node.snat().before_mitigation().mapping() == v1::NAT_MAPPING_ENDPOINT_DEPENDENT;
  if (auto it = provider_ids_.find(node.name()); it != provider_ids_.end()) e.provider_id = it->second;
  e.aws_randomize_snat = aws_randomize_snat_;
  e.aws_external_snat = aws_external_snat_;
  // A NAT that keeps ports per destination, yet a peer sees another port: a conntrack
  // entry on the NAT took it first (seeds/004). (The node was asked to probe a fresh flow:
  // had its NAT turned hard, its report would say so by now.)
  for (const auto& [peer, report] : health_) {
    if (peer == node.name()) continue;
    for (const auto& h : report.peers()) {
      if (auto seen = SightingAgainstStun(node.nat(), peer, h); seen && h.peer() == node.name()) {
        e.collisions.push_back(*std::move(seen));
      }
    }
  }
  return nat::DiagnoseSnat(e);
}

std::optional<std::string> ControllerService::SightingAgainstStun(const v1::NatReport& r, const std::string& peer,
                                                                  const v1::PeerHealth& h) {
  if (!r.has_reflexive() || r.mapping() == v1::NAT_MAPPING_ENDPOINT_DEPENDENT) return std::nullopt;
  if (h.endpoint().ip() != r.reflexive().ip() || h.endpoint().port() == 0 || h.endpoint().port() == r.reflexive().port()) {
    return std::nullopt;
  }
  return absl::StrCat("peer ", peer, " sees ", h.endpoint().ip(), ":", h.endpoint().port(), ", STUN sees ",
                      r.reflexive().ip(), ":", r.reflexive().port());
}

std::optional<std::string> ControllerService::NewAddressSighting(const v1::NodeInfo& node, const std::string& peer,
                                                                 const v1::PeerHealth& h) {
  const v1::NatReport& r = node.nat();
  const std::string& known = r.has_reflexive() ? r.reflexive().ip() : r.public_ip();
  if (h.path() != v1::PATH_KIND_DIRECT || known.empty() || h.endpoint().ip().empty() || h.endpoint().ip() == known) {
    return std::nullopt;
  }
  for (const auto& c : node.candidates()) {
    if (c.endpoint().ip() == h.endpoint().ip()) return std::nullopt;  // one of its own (a local path)
  }
  return absl::StrCat("peer ", peer, " sees ", h.endpoint().ip(), ":", h.endpoint().port(), ", STUN sees ", known,
                      r.has_reflexive() ? absl::StrCat(":", r.reflexive().port()) : "");
}

void ControllerService::AskReprobeLocked(const std::string& reporter, const v1::HealthReport& report) {
  for (const auto& h : report.peers()) {
    const v1::NodeInfo* peer = store_.Find(h.peer());
    if (peer == nullptr) continue;
    auto seen = SightingAgainstStun(peer->nat(), reporter, h);
    if (!seen) seen = NewAddressSighting(*peer, reporter, h);
    if (!seen) continue;
    // Once per sighting (until the node reports anew); a bounded set per node.
    std::set<std::string>& asked = reprobes_asked_[h.peer()];
    if (asked.size() >= kMaxReprobesPerNode || !asked.insert(*seen).second) continue;
    auto it = streams_.find(h.peer());
    if (it == streams_.end()) continue;
    v1::ControllerMessage m;
    m.mutable_reprobe()->set_reason(*std::move(seen));
    *m.mutable_reprobe()->mutable_seen() = h.endpoint();
    it->second->QueueLocked(std::move(m));
  }
}

void ControllerService::Health(const std::string& node, const v1::HealthReport& in) {
  std::lock_guard<std::mutex> l(mu_);
  size_t dropped = 0;
  v1::HealthReport report = CleanHealth(
      in, [&](const std::string& peer) { return peer != node && store_.Find(peer) != nullptr; }, &dropped);
  if (dropped > 0) input_dropped_health_.fetch_add(dropped, std::memory_order_relaxed);
  health_[node] = report;
  AskReprobeLocked(node, report);
  NotifyLocked(node);
  // What this node sees of its peers can change their diagnosis (collisions).
  for (const auto& h : report.peers()) NotifyLocked(h.peer());
}

std::optional<NodeView> ControllerService::View(const std::string& node) const {
  std::lock_guard<std::mutex> l(mu_);
  const v1::NodeInfo* self = store_.Find(node);
  if (self == nullptr) return std::nullopt;
  NodeView v;
  v.info = *self;
  v.connected = streams_.contains(node);
  if (auto it = provider_ids_.find(node); it != provider_ids_.end()) v.provider_id = it->second;
  v.snat = DiagnoseLocked(*self);
  v.peers = PeerViewsLocked(*self);
  return v;
}

std::vector<PeerView> ControllerService::PeerViewsLocked(const v1::NodeInfo& self) const {
  std::vector<PeerView> out;
  const auto health = health_.find(self.name());
  const nat::NodeNat a = api::NodeNatOf(self);
  for (const auto& [name, peer] : store_.nodes()) {
    if (name == self.name()) continue;
    PeerView p{name, nat::DecidePath(a, api::NodeNatOf(peer)), std::nullopt};
    if (health != health_.end()) {
      for (const auto& h : health->second.peers()) {
        if (h.peer() == name) p.health = h;
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

absl::Status ControllerService::UseStateFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  state_file_ = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // first start
  v1::ControllerState st;
  if (!st.ParseFromIstream(&in)) return absl::DataLossError(absl::StrCat("cannot parse controller state ", path));
  store_.Restore(st.snapshot());
  if (!st.epoch().empty()) epoch_ = st.epoch();
  // One entry per node: its blocks, comma-separated (one per family).
  for (const auto& [node, cidrs] : st.pod_cidrs()) RestoreBlocks(pods_, node, cidrs);
  return absl::OkStatus();
}

void ControllerService::SaveLocked() {
  if (state_file_.empty()) return;
  v1::ControllerState st;
  *st.mutable_snapshot() = store_.Snapshot();
  for (const auto& pods : pods_) {
    for (const auto& [node, cidr] : pods.assignments()) {
      std::string& entry = (*st.mutable_pod_cidrs())[node];
      absl::StrAppend(&entry, entry.empty() ? "" : ",", cidr.ToString());
    }
  }
  st.set_epoch(epoch_);
  const std::string tmp = state_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!st.SerializeToOstream(&out)) return;
  }
  std::rename(tmp.c_str(), state_file_.c_str());
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* ControllerService::Connect(grpc::CallbackServerContext* ctx) {
  return AgentStream::Start(this, ctx);
}

grpc::Status ControllerService::Join(AgentStream* stream, const v1::Hello& hello) {
  if (absl::Status bad = CheckHello(hello); !bad.ok()) {
    input_refused_.fetch_add(1, std::memory_order_relaxed);
    return ToGrpc(bad);
  }
  // The node's own token admits that node; the shared join token any (unless refused).
  const bool own = TokensEqual(hello.token(), NodeToken(join_token_, hello.node()));
  if (!own && (node_tokens_only_ || !TokensEqual(hello.token(), join_token_))) {
    input_refused_.fetch_add(1, std::memory_order_relaxed);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        node_tokens_only_ ? "bad token: this controller admits each node with its own token only "
                                            "(weft-controller --print-node-token NODE)"
                                          : "bad join token");
  }
  return JoinAdmitted(stream, hello, {});
}

grpc::Status ControllerService::JoinAdmitted(AgentStream* stream, const v1::Hello& hello,
                                             const std::vector<std::string>& admitted_cidrs) {
  std::lock_guard<std::mutex> l(mu_);
  if (!leading_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller is a standby; the leader serves agents");
  }
  // Versions count within an epoch: from another epoch (another leader) a snapshot.
  const bool same_epoch = hello.resume_epoch().empty() || hello.resume_epoch() == epoch_;
  const uint64_t resume = same_epoch ? hello.resume_version() : 0;
  auto deltas = store_.DeltasSince(resume);
  if (!deltas.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(deltas.status().message()));
  v1::ControllerMessage welcome;
  if (admit_) {
    assigned_[hello.node()] = admitted_cidrs;
    for (const auto& c : admitted_cidrs) welcome.mutable_welcome()->add_pod_cidrs(c);
    for (const auto& c : cluster_cidrs_) welcome.mutable_welcome()->add_cluster_cidrs(c);
  } else {
    // A block of each cluster CIDR (both families for dual-stack), all or none.
    std::vector<std::string> had(hello.pod_cidrs().begin(), hello.pod_cidrs().end());
    bool new_assignment = false;
    std::vector<std::string> cidrs;
    for (auto& pods : pods_) {
      const bool fresh = !pods.assignments().contains(hello.node());
      auto cidr = pods.Assign(hello.node(), had);
      if (!cidr.ok()) {
        if (new_assignment) {
          for (auto& p : pods_) p.Release(hello.node());
        }
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(cidr.status().message()));
      }
      new_assignment = new_assignment || fresh;
      cidrs.push_back(cidr->ToString());
    }
    if (new_assignment) SaveLocked();
    assigned_[hello.node()] = cidrs;
    for (const auto& c : cidrs) welcome.mutable_welcome()->add_pod_cidrs(c);
    for (const auto& pods : pods_) welcome.mutable_welcome()->add_cluster_cidrs(pods.cluster().ToString());
  }
  welcome.mutable_welcome()->set_epoch(epoch_);
  *welcome.mutable_welcome()->mutable_relays() = RelayServersLocked(hello.node());
  if (auto old = streams_.find(hello.node()); old != streams_.end() && old->second != stream) {
    // A reconnect whose old stream has not noticed yet: the newest wins.
    old->second->FinishWith(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream for this node"));
  }
  stream->SetNodeLocked(hello.node());
  streams_[hello.node()] = stream;
  unjoined_.erase(stream);
  stream->QueueLocked(std::move(welcome));
  // resume 0: a new agent (or a new epoch), which needs the whole state even when empty.
  if (resume > 0 && deltas->has_value()) {
    for (auto& d : **deltas) {
      v1::ControllerMessage m;
      *m.mutable_delta() = std::move(d);
      stream->QueueLocked(std::move(m));
    }
  } else {
    v1::ControllerMessage m;
    *m.mutable_snapshot() = store_.Snapshot();
    stream->QueueLocked(std::move(m));
  }
  // No directives here: a (re)joining agent decides its pairs itself with the same
  // function until a change brings the controller's (sending N directives per join would
  // be O(N^2) messages when a whole cluster reconnects).
  NotifyLocked(hello.node());
  return grpc::Status::OK;
}

void ControllerService::SetLog(std::function<void(const std::string&)> log) {
  std::lock_guard<std::mutex> l(log_mu_);
  log_ = std::move(log);
}

void ControllerService::Note(const std::string& kind, const std::string& line) {
  std::lock_guard<std::mutex> l(log_mu_);
  if (!log_) return;
  if (auto out = log_limiter_.Line(kind, line, sys::SteadyMs())) log_(*out);
}

namespace {

// Text from an agent, for a log line: printable ASCII as is, anything else as \xNN, cut
// to `max` bytes first (a name or message may be anything).
std::string Printable(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

void ControllerService::NoteJoin(const v1::Hello& hello, const grpc::Status& s) {
  const std::string node = absl::StrCat("node \"", Printable(hello.node(), 64), "\"");
  if (s.ok()) {
    Note("joined", absl::StrCat(node, " joined"));
  } else if (s.error_code() != grpc::StatusCode::UNAVAILABLE && s.error_code() != grpc::StatusCode::CANCELLED) {
    // Standbys refuse every agent by design, and a cancelled join is the agent's doing.
    Note(absl::StrCat("refused ", s.error_code()),
         absl::StrCat(node, " refused: ", Printable(s.error_message(), 200)));
  }
}

grpc::Status ControllerService::Update(const std::string& node, const v1::NodeInfo& info) {
  auto refuse = [&](grpc::StatusCode code, const std::string& why) {
    input_refused_.fetch_add(1, std::memory_order_relaxed);
    Note("NodeInfo refused", absl::StrCat("node \"", node, "\": NodeInfo refused: ", Printable(why, 200)));
    return grpc::Status(code, absl::StrCat("NodeInfo refused: ", why));
  };
  if (info.name() != node) {
    return refuse(grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat("stream of node \"", node, "\" cannot report node \"", info.name(), "\""));
  }
  if (absl::Status bad = CheckNodeInfo(info); !bad.ok()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, std::string(bad.message()));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!leading_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller is no longer the leader");
  // The controller is the only authority for pod CIDRs: a node publishes the ones it was
  // given, or nothing reaches its peers (they route these into the tunnel).
  std::vector<std::string> claimed(info.pod_cidrs().begin(), info.pod_cidrs().end());
  std::vector<std::string> want = assigned_[node];
  std::sort(claimed.begin(), claimed.end());
  std::sort(want.begin(), want.end());
  if (claimed != want) {
    return refuse(grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat("node \"", node, "\" reported pod CIDRs [", absl::StrJoin(claimed, ", "),
                               "]; the controller assigned it [", absl::StrJoin(want, ", "), "]"));
  }
  // One key, one node: a peer configured twice under one key would have WireGuard
  // merge them (the second's AllowedIPs taken from the first).
  if (!info.wireguard_public_key().empty()) {
    for (const auto& [name, n] : store_.nodes()) {
      if (name != node && n.wireguard_public_key() == info.wireguard_public_key()) {
        return refuse(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat("node \"", node, "\" reported the WireGuard key of node \"", name, "\""));
      }
    }
  }
  // Standalone: the key a node first joined with is its identity (the join token is
  // every node's): another key for that name is refused until the admin forgets the node.
  if (!admit_) {
    const v1::NodeInfo* known = store_.Find(node);
    if (known != nullptr && !known->wireguard_public_key().empty() &&
        known->wireguard_public_key() != info.wireguard_public_key()) {
      return refuse(grpc::StatusCode::PERMISSION_DENIED,
                    absl::StrCat("node \"", node, "\" joined before with another WireGuard key (pinned on first join); "
                                 "if the node was reinstalled, forget it on the controller's host: "
                                 "curl -X POST 'http://127.0.0.1:7080/forget?node=", node, "'"));
    }
  }
  const uint64_t before = store_.version();
  const uint64_t after = store_.Upsert(info);
  if (after == before) return grpc::Status::OK;
  reprobes_asked_.erase(node);  // a new report: what peers see is weighed against it afresh
  // Every node's view changes: its decision towards this node may have.
  for (const auto& [name, n] : store_.nodes()) NotifyLocked(name);
  SaveLocked();
  auto deltas = store_.DeltasSince(before);
  for (auto& [name, stream] : streams_) {
    for (const auto& d : **deltas) {
      v1::ControllerMessage m;
      *m.mutable_delta() = d;
      stream->QueueLocked(std::move(m));
    }
  }
  QueueDirectivesLocked(node);
  return grpc::Status::OK;
}

void ControllerService::QueueDirectivesLocked(const std::string& node) {
  const v1::NodeInfo* self = store_.Find(node);
  if (self == nullptr) return;
  // No decision without both verdicts: a guess could have them punch where the table
  // says relay.
  if (self->nat().mapping() == v1::NAT_MAPPING_UNSPECIFIED && !self->nat().udp_blocked()) return;
  const nat::NodeNat a = api::NodeNatOf(*self);
  for (const auto& [name, peer] : store_.nodes()) {
    if (name == node) continue;
    if (peer.nat().mapping() == v1::NAT_MAPPING_UNSPECIFIED && !peer.nat().udp_blocked()) continue;
    const nat::PathDecision d = nat::DecidePath(a, api::NodeNatOf(peer));
    auto send = [&](const std::string& to, const std::string& other, bool initiate) {
      auto it = streams_.find(to);
      if (it == streams_.end()) return;
      v1::ControllerMessage m;
      *m.mutable_directive() = api::DirectiveOf(d, other, initiate);
      it->second->QueueLocked(std::move(m));
    };
    send(node, peer.name(), d.initiator == nat::Initiator::kA || d.initiator == nat::Initiator::kBoth ||
                                d.initiator == nat::Initiator::kEither);
    send(peer.name(), node, d.initiator == nat::Initiator::kB || d.initiator == nat::Initiator::kBoth ||
                                d.initiator == nat::Initiator::kEither);
  }
}

void ControllerService::Leave(AgentStream* stream) {
  std::lock_guard<std::mutex> l(mu_);
  unjoined_.erase(stream);
  paused_.erase(stream);
  auto it = streams_.find(stream->node());
  // Only if it is still the node's current stream; the node's state stays (the data
  // plane keeps working while an agent restarts).
  if (it != streams_.end() && it->second == stream) {
    streams_.erase(it);
    NotifyLocked(stream->node());
  }
}

v1::Snapshot ControllerService::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return store_.Snapshot();
}

std::string ControllerService::StatusJson() const {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json out = {{"version", store_.version()},
                         {"agentInput", {{"refused", input_refused_.load()},
                                         {"droppedRate", input_dropped_rate_.load()},
                                         {"droppedHealthEntries", input_dropped_health_.load()}}},
                         {"nodes", nlohmann::json::array()}};
  for (const auto& [name, node] : store_.nodes()) {
    const nat::NodeNat a = api::NodeNatOf(node);
    nlohmann::json n = {{"name", name},
                        {"connected", streams_.contains(name)},
                        {"podCIDRs", std::vector<std::string>(node.pod_cidrs().begin(), node.pod_cidrs().end())},
                        {"nat", {{"mapping", std::string(nat::MappingName(a.nat.mapping))},
                                 {"filtering", std::string(nat::FilteringName(a.nat.filtering))},
                                 {"udpBlocked", a.nat.udp_blocked},
                                 {"noIPv4", a.nat.no_route},
                                 {"reason", a.nat.reason}}},
                        {"peers", nlohmann::json::array()}};
    if (a.nat.reflexive) n["nat"]["reflexive"] = a.nat.reflexive->ToString();
    if (node.has_nat6()) n["nat6"] = Nat6Json(node.nat6());
    n["wireguard"] = api::WireGuardBackendName(node.wireguard_backend());
    n["snat"] = SnatJson(DiagnoseLocked(node), node);
    for (const PeerView& p : PeerViewsLocked(node)) n["peers"].push_back(PeerJson(p, "peer"));
    out["nodes"].push_back(std::move(n));
  }
  return out.dump(2) + "\n";
}

std::string ControllerService::MetricsText() const {
  std::string out =
      "# HELP weft_controller_agent_input_total Agent messages refused (the stream ends with the reason) or dropped.\n"
      "# TYPE weft_controller_agent_input_total counter\n";
  absl::StrAppend(&out, "weft_controller_agent_input_total{outcome=\"refused\"} ", input_refused_.load(), "\n",
                  "weft_controller_agent_input_total{outcome=\"dropped_rate\"} ", input_dropped_rate_.load(), "\n",
                  "weft_controller_agent_input_total{outcome=\"dropped_health_entry\"} ", input_dropped_health_.load(),
                  "\n", "# HELP weft_controller_agents_connected Agents with a live stream.\n",
                  "# TYPE weft_controller_agents_connected gauge\n", "weft_controller_agents_connected ", connected(),
                  "\n");
  return out;
}

size_t ControllerService::connected() const {
  std::lock_guard<std::mutex> l(mu_);
  return streams_.size();
}

}  // namespace weft::controller
