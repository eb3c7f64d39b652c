// The cluster's endpoint state, versioned: a snapshot plus a bounded log of deltas, so a
// reconnecting agent gets only what it missed and a new one gets one snapshot.
#ifndef WEFT_CONTROLLER_ENDPOINT_STORE_H_
#define WEFT_CONTROLLER_ENDPOINT_STORE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "weft/v1/weft.pb.h"

namespace weft::controller {

class EndpointStore {
 public:
  // Keeps the last `max_log` deltas; older resume points get a snapshot instead.
  explicit EndpointStore(size_t max_log = 4096) : max_log_(max_log) {}

  // Inserts or replaces a node. Returns the version after the change; a node equal to
  // the stored one changes nothing (same version, no delta).
  uint64_t Upsert(const v1::NodeInfo& node);
  // Removes a node; NotFound if there is none of that name.
  absl::StatusOr<uint64_t> Remove(const std::string& name);

  // Starts from a saved snapshot (a restarted controller): same nodes, same version, an
  // empty delta log (older resume points get a snapshot).
  void Restore(const v1::Snapshot& snapshot);

  uint64_t version() const { return version_; }
  size_t size() const { return nodes_.size(); }
  const v1::NodeInfo* Find(const std::string& name) const;
  const std::map<std::string, v1::NodeInfo>& nodes() const { return nodes_; }
  v1::Snapshot Snapshot() const;

  // What an agent that has seen `since` needs: the deltas after it, or nothing when
  // `since` is older than the log (send a Snapshot). InvalidArgument for a version
  // this store never reached (a replayed or forged resume point).
  absl::StatusOr<std::optional<std::vector<v1::Delta>>> DeltasSince(uint64_t since) const;

 private:
  void Append(v1::Delta delta);

  size_t max_log_;
  uint64_t version_ = 0;
  std::map<std::string, v1::NodeInfo> nodes_;
  std::deque<v1::Delta> log_;  // consecutive versions, oldest first
};

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_ENDPOINT_STORE_H_
