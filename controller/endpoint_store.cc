#include "controller/endpoint_store.h"

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/str_cat.h"

namespace weft::controller {

void EndpointStore::Append(v1::Delta delta) {
  delta.set_version(++version_);
  log_.push_back(std::move(delta));
  while (log_.size() > max_log_) log_.pop_front();
}

uint64_t EndpointStore::Upsert(const v1::NodeInfo& node) {
  auto it = nodes_.find(node.name());
  if (it != nodes_.end() && google::protobuf::util::MessageDifferencer::Equals(it->second, node)) return version_;
  nodes_[node.name()] = node;
  v1::Delta d;
  *d.add_upserted() = node;
  Append(std::move(d));
  return version_;
}

absl::StatusOr<uint64_t> EndpointStore::Remove(const std::string& name) {
  if (nodes_.erase(name) == 0) return absl::NotFoundError(absl::StrCat("no node \"", name, "\""));
  v1::Delta d;
  d.add_removed(name);
  Append(std::move(d));
  return version_;
}

void EndpointStore::Restore(const v1::Snapshot& snapshot) {
  nodes_.clear();
  log_.clear();
  for (const auto& n : snapshot.nodes()) nodes_[n.name()] = n;
  version_ = snapshot.version();
}

const v1::NodeInfo* EndpointStore::Find(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

v1::Snapshot EndpointStore::Snapshot() const {
  v1::Snapshot s;
  s.set_version(version_);
  for (const auto& [name, node] : nodes_) *s.add_nodes() = node;
  return s;
}

absl::StatusOr<std::optional<std::vector<v1::Delta>>> EndpointStore::DeltasSince(uint64_t since) const {
  if (since > version_) {
    return absl::InvalidArgumentError(absl::StrCat("resume version ", since, " is newer than the controller's ",
                                                   version_, " (replayed or from another controller's history)"));
  }
  if (since == version_) return std::optional<std::vector<v1::Delta>>(std::vector<v1::Delta>{});
  if (log_.empty() || since + 1 < log_.front().version()) return std::optional<std::vector<v1::Delta>>();
  std::vector<v1::Delta> out(log_.begin() + static_cast<std::ptrdiff_t>(since + 1 - log_.front().version()), log_.end());
  return std::optional<std::vector<v1::Delta>>(std::move(out));
}

}  // namespace weft::controller
