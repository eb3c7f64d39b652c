// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the leader
// renews every retry period; a candidate takes the Lease once its holder has not renewed
// for the lease duration; a leader that cannot renew within the renew deadline stops
// leading before anyone else may start. The pure part (what to write, who holds it) is
// separate from the loop that talks to the API.
#ifndef WEFT_LIB_K8S_LEASE_H_
#define WEFT_LIB_K8S_LEASE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/k8s/kube_client.h"
#include "nlohmann/json.hpp"

namespace weft::k8s {

struct LeaseSpec {
  std::string holder;  // "" when released
  int duration_seconds = 0;
  absl::Time acquire_time = absl::InfinitePast();
  absl::Time renew_time = absl::InfinitePast();
  int transitions = 0;
};

// spec of a Lease object; InvalidArgument when a field has the wrong type or format.
absl::StatusOr<LeaseSpec> LeaseSpecOf(const nlohmann::json& lease);
nlohmann::json LeaseSpecJson(const LeaseSpec& spec);
// RFC 3339 with microseconds, the API's MicroTime ("2026-11-27T10:00:00.000000Z").
std::string MicroTime(absl::Time t);

// When the holder's claim ends. A renewTime in the future (the holder's clock is ahead)
// counts as `now`, so a skewed clock cannot keep a dead leader's Lease alive longer.
absl::Time LeaseExpiry(const LeaseSpec& spec, absl::Time now);
// True if `me` may write the Lease now: it holds it, it was released, or it expired.
bool MayClaim(const LeaseSpec& spec, const std::string& me, absl::Time now);
// The spec `me` writes to take or renew the Lease.
LeaseSpec Claim(const LeaseSpec& current, const std::string& me, absl::Time now, int duration_seconds);

struct ElectorOptions {
  std::string lease_namespace = "kube-system";
  std::string lease_name = "weft-controller";
  std::string identity;  // this replica (the pod name)
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};  // < lease_duration
  std::chrono::milliseconds retry_period{2000};
};

class LeaderElector {
 public:
  // `on_change(true)` when this replica starts leading, `(false)` when it stops. Called
  // from Run's thread.
  LeaderElector(KubeClient& client, ElectorOptions opts, std::function<void(bool)> on_change)
      : client_(client), opts_(std::move(opts)), on_change_(std::move(on_change)) {}

  // Campaigns until `stop`; then releases the Lease if it holds it, so a standby takes
  // over at once instead of after the lease duration.
  void Run(std::stop_token stop);

  bool leading() const { return leading_.load(); }
  std::string holder() const;

 private:
  // One attempt: returns whether this replica holds the Lease now, and sets `next`.
  absl::StatusOr<bool> TryAcquireOrRenew(std::chrono::milliseconds* next);
  void SetLeading(bool leading);
  void Release();
  std::string Path() const;

  KubeClient& client_;
  const ElectorOptions opts_;
  const std::function<void(bool)> on_change_;
  std::atomic<bool> leading_{false};
  mutable std::mutex mu_;
  std::string holder_;  // guarded by mu_
  std::mutex change_mu_;  // held while on_change_ runs
};

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_LEASE_H_
