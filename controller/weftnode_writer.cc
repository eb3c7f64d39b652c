#include "controller/weftnode_writer.h"

#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controller/weftnode.h"

namespace weft::controller {
namespace {

std::string Rfc3339Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

}  // namespace

void WeftNodeWriter::MarkDirty(const std::string& node) {
  std::lock_guard<std::mutex> l(mu_);
  dirty_.insert(node);
}

void WeftNodeWriter::Seed(const std::string& node, const nlohmann::json& status) {
  std::lock_guard<std::mutex> l(mu_);
  if (status.is_object() && status.contains("conditions")) seeded_[node] = status["conditions"];
}

void WeftNodeWriter::SetEnabled(bool enabled) {
  std::lock_guard<std::mutex> l(mu_);
  enabled_ = enabled;
}

absl::Status WeftNodeWriter::Write(const std::string& node, const nlohmann::json& status) {
  const std::string path = absl::StrCat(kWeftNodes, "/", node, "/status");
  auto r = client_.MergePatch(path, {{"status", status}});
  if (absl::IsNotFound(r.status())) {
    nlohmann::json obj = NewWeftNode(node);
    if (std::string uid = owner_uid_(node); !uid.empty()) {
      obj["metadata"]["ownerReferences"] = {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", uid}}};
    }
    auto created = client_.Create(kWeftNodes, obj);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
    r = client_.MergePatch(path, {{"status", status}});
  }
  return r.status();
}

void WeftNodeWriter::Run(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  const auto tick = std::chrono::milliseconds(100);
  double budget = opts_.writes_per_second;  // token bucket, refilled every tick
  bool was_enabled = false;
  while (!stop.stop_requested()) {
    std::this_thread::sleep_for(tick);
    budget = std::min<double>(opts_.writes_per_second, budget + opts_.writes_per_second * 0.1);
    std::vector<std::string> todo;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!enabled_) {
        was_enabled = false;
        continue;
      }
      if (!was_enabled) {  // a new term: what an earlier leader wrote may differ
        written_.clear();
        conditions_ = std::move(seeded_);
        seeded_.clear();
        was_enabled = true;
      }
      todo.assign(dirty_.begin(), dirty_.end());
    }
    const auto now = Clock::now();
    for (const std::string& node : todo) {
      if (budget < 1) break;
      if (auto it = last_write_.find(node); it != last_write_.end() && now - it->second < opts_.per_node_interval) {
        continue;  // stays dirty; written when its interval is up
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        dirty_.erase(node);
      }
      std::optional<nlohmann::json> status = status_of_(node);
      if (!status) continue;
      if (auto w = written_.find(node); w != written_.end() && w->second == *status) continue;
      budget -= 1;
      nlohmann::json full = *status;
      SetTransitionTimes(conditions_[node], Rfc3339Now(), full);
      if (absl::Status s = Write(node, full); !s.ok()) {
        std::fprintf(stderr, "weft-controller: WeftNode %s: %s\n", node.c_str(), s.ToString().c_str());
        MarkDirty(node);  // retried after the interval
        last_write_[node] = now;
        continue;
      }
      written_[node] = *status;
      conditions_[node] = full["conditions"];
      last_write_[node] = now;
      writes_.fetch_add(1);
    }
  }
}

}  // namespace weft::controller
