#include "controller/controller_service.h"

#include <cstdio>
#include <deque>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "lib/api/node_nat.h"
#include "lib/nat/path_strategy.h"
#include "nlohmann/json.hpp"

namespace weft::controller {

// One agent's stream. Owned by gRPC; deletes itself in OnDone.
class AgentStream : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  AgentStream(ControllerService* service) : service_(service) { StartRead(&in_); }

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
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }
  const std::string& node() const { return node_; }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the agent closed its side
      FinishWith(grpc::Status::OK);
      return;
    }
    grpc::Status s = Handle(in_);
    if (!s.ok()) {
      FinishWith(s);
      return;
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(write_mu_);
    writing_ = false;
    if (!ok) return;  // the stream is going away; OnDone follows
    if (!out_.empty()) out_.pop_front();
    if (!out_.empty() && !finished_) WriteNext();
  }
  void OnDone() override {
    service_->Leave(this);
    delete this;
  }

 private:
  grpc::Status Handle(const v1::AgentMessage& m) {
    if (node_.empty()) {
      if (m.msg_case() != v1::AgentMessage::kHello) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Hello");
      }
      grpc::Status s = service_->Join(this, m.hello());
      if (s.ok()) node_ = m.hello().node();
      return s;
    }
    switch (m.msg_case()) {
      case v1::AgentMessage::kHello:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello sent twice on one stream");
      case v1::AgentMessage::kNode:
        return service_->Update(node_, m.node());
      case v1::AgentMessage::kHealth:
        return grpc::Status::OK;  // recorded into WeftNode status with the Kubernetes mode
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty AgentMessage");
    }
  }
  void WriteNext() {  // write_mu_ held
    writing_ = true;
    StartWrite(&out_.front());
  }

  ControllerService* service_;
  v1::AgentMessage in_;
  std::string node_;  // set once Hello is accepted
  std::mutex write_mu_;
  std::deque<v1::ControllerMessage> out_;  // front() is being written while writing_
  bool writing_ = false;
  bool finished_ = false;
};

absl::Status ControllerService::UseStateFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  state_file_ = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // first start
  v1::ControllerState st;
  if (!st.ParseFromIstream(&in)) return absl::DataLossError(absl::StrCat("cannot parse controller state ", path));
  store_.Restore(st.snapshot());
  for (const auto& [node, cidr] : st.pod_cidrs()) (void)pods_.Assign(node, {cidr});
  return absl::OkStatus();
}

void ControllerService::SaveLocked() {
  if (state_file_.empty()) return;
  v1::ControllerState st;
  *st.mutable_snapshot() = store_.Snapshot();
  for (const auto& [node, cidr] : pods_.assignments()) (*st.mutable_pod_cidrs())[node] = cidr.ToString();
  const std::string tmp = state_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!st.SerializeToOstream(&out)) return;
  }
  std::rename(tmp.c_str(), state_file_.c_str());
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* ControllerService::Connect(grpc::CallbackServerContext*) {
  return new AgentStream(this);
}

grpc::Status ControllerService::Join(AgentStream* stream, const v1::Hello& hello) {
  if (hello.token() != join_token_) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad join token");
  }
  if (hello.node().empty() || hello.node().size() > 253) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello.node must be a node name (1..253 characters)");
  }
  std::lock_guard<std::mutex> l(mu_);
  auto deltas = store_.DeltasSince(hello.resume_version());
  if (!deltas.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(deltas.status().message()));
  if (auto old = streams_.find(hello.node()); old != streams_.end() && old->second != stream) {
    // A reconnect whose old stream has not noticed yet: the newest wins.
    old->second->FinishWith(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream for this node"));
  }
  std::vector<std::string> had(hello.pod_cidrs().begin(), hello.pod_cidrs().end());
  const bool new_assignment = !pods_.assignments().contains(hello.node());
  auto cidr = pods_.Assign(hello.node(), had);
  if (!cidr.ok()) return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(cidr.status().message()));
  streams_[hello.node()] = stream;
  if (new_assignment) SaveLocked();
  v1::ControllerMessage welcome;
  welcome.mutable_welcome()->add_pod_cidrs(cidr->ToString());
  welcome.mutable_welcome()->add_cluster_cidrs(pods_.cluster().ToString());
  stream->QueueLocked(std::move(welcome));
  // resume_version 0: a new agent, which needs the whole state even when it is empty.
  if (hello.resume_version() > 0 && deltas->has_value()) {
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
  return grpc::Status::OK;
}

grpc::Status ControllerService::Update(const std::string& node, const v1::NodeInfo& info) {
  if (info.name() != node) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("stream of node \"", node, "\" cannot report node \"", info.name(), "\""));
  }
  if (!info.wireguard_public_key().empty() && info.wireguard_public_key().size() != 32) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wireguard_public_key must be 32 bytes");
  }
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t before = store_.version();
  const uint64_t after = store_.Upsert(info);
  if (after == before) return grpc::Status::OK;
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
  const nat::NodeNat a = api::NodeNatOf(*self);
  for (const auto& [name, peer] : store_.nodes()) {
    if (name == node) continue;
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
  auto it = streams_.find(stream->node());
  // Only if it is still the node's current stream; the node's state stays (the data
  // plane keeps working while an agent restarts).
  if (it != streams_.end() && it->second == stream) streams_.erase(it);
}

v1::Snapshot ControllerService::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return store_.Snapshot();
}

std::string ControllerService::StatusJson() const {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json out = {{"version", store_.version()}, {"nodes", nlohmann::json::array()}};
  for (const auto& [name, node] : store_.nodes()) {
    const nat::NodeNat a = api::NodeNatOf(node);
    nlohmann::json n = {{"name", name},
                        {"connected", streams_.contains(name)},
                        {"podCIDRs", std::vector<std::string>(node.pod_cidrs().begin(), node.pod_cidrs().end())},
                        {"nat", {{"mapping", std::string(nat::MappingName(a.nat.mapping))},
                                 {"filtering", std::string(nat::FilteringName(a.nat.filtering))},
                                 {"udpBlocked", a.nat.udp_blocked},
                                 {"reason", a.nat.reason}}},
                        {"peers", nlohmann::json::array()}};
    if (a.nat.reflexive) n["nat"]["reflexive"] = a.nat.reflexive->ToString();
    for (const auto& [peer_name, peer] : store_.nodes()) {
      if (peer_name == name) continue;
      const nat::PathDecision d = nat::DecidePath(a, api::NodeNatOf(peer));
      n["peers"].push_back({{"peer", peer_name}, {"path", std::string(nat::PathKindName(d.path))}, {"reason", d.reason}});
    }
    out["nodes"].push_back(std::move(n));
  }
  return out.dump(2) + "\n";
}

size_t ControllerService::connected() const {
  std::lock_guard<std::mutex> l(mu_);
  return streams_.size();
}

}  // namespace weft::controller
