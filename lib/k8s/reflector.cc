#include "lib/k8s/reflector.h"

#include <thread>

#include "absl/strings/str_cat.h"

namespace weft::k8s {
namespace {

void SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  for (auto waited = std::chrono::milliseconds(0); waited < d && !stop.stop_requested();
       waited += std::chrono::milliseconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string Reflector::resource_version() const {
  std::lock_guard<std::mutex> l(mu_);
  return rv_;
}

absl::Status Reflector::ListAndWatch(std::stop_token stop) {
  auto list = client_.Get(path_);
  if (!list.ok()) return list.status();
  auto items = list->find("items");
  if (items == list->end() || !items->is_array()) {
    return absl::DataLossError(absl::StrCat("list ", path_, ": no items array"));
  }
  std::string rv = ResourceVersionOf(*list);
  {
    std::lock_guard<std::mutex> l(mu_);
    rv_ = rv;
  }
  handler_.replace(std::vector<nlohmann::json>(items->begin(), items->end()));
  lists_.fetch_add(1);
  while (!stop.stop_requested()) {
    absl::Status event_status;
    absl::Status s = client_.Watch(
        path_, rv, watch_timeout_,
        [&](WatchEvent e) {
          if (e.type == "ERROR") {
            event_status = WatchErrorStatus(e);
            return false;
          }
          if (std::string next = ResourceVersionOf(e.object); !next.empty()) rv = next;
          if (e.type != "BOOKMARK") handler_.event(e.type, e.object);
          std::lock_guard<std::mutex> l(mu_);
          rv_ = rv;
          return true;
        },
        stop);
    if (!event_status.ok()) return event_status;
    if (!s.ok()) return s;
    // The server ended the stream (timeoutSeconds): resume where it stopped.
  }
  return absl::CancelledError("stopped");
}

void Reflector::Run(std::stop_token stop) {
  auto backoff = std::chrono::milliseconds(100);
  while (!stop.stop_requested()) {
    absl::Status s = ListAndWatch(stop);
    if (stop.stop_requested()) return;
    if (absl::IsOutOfRange(s)) {  // 410 Gone: relist at once, that is what it asks for
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    if (handler_.error) handler_.error(s);
    SleepFor(backoff, stop);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace weft::k8s
