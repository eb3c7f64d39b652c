#include "lib/k8s/lease.h"

#include <thread>

#include "absl/strings/str_cat.h"

namespace weft::k8s {

std::string MicroTime(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone()); }

absl::StatusOr<LeaseSpec> LeaseSpecOf(const nlohmann::json& lease) try {
  LeaseSpec s;
  auto spec = lease.find("spec");
  if (spec == lease.end()) return s;
  if (!spec->is_object()) return absl::InvalidArgumentError("Lease spec is not an object");
  auto time_field = [&](const char* name, absl::Time* out) -> absl::Status {
    auto f = spec->find(name);
    if (f == spec->end() || f->is_null()) return absl::OkStatus();
    std::string err;
    if (!f->is_string() || !absl::ParseTime(absl::RFC3339_full, f->get<std::string>(), out, &err)) {
      return absl::InvalidArgumentError(absl::StrCat("Lease spec.", name, " is not an RFC 3339 time"));
    }
    return absl::OkStatus();
  };
  if (auto h = spec->find("holderIdentity"); h != spec->end() && h->is_string()) s.holder = h->get<std::string>();
  if (auto d = spec->find("leaseDurationSeconds"); d != spec->end()) {
    if (!d->is_number_integer()) return absl::InvalidArgumentError("Lease spec.leaseDurationSeconds is not an integer");
    s.duration_seconds = d->get<int>();
  }
  if (auto t = spec->find("leaseTransitions"); t != spec->end() && t->is_number_integer()) s.transitions = t->get<int>();
  if (absl::Status st = time_field("acquireTime", &s.acquire_time); !st.ok()) return st;
  if (absl::Status st = time_field("renewTime", &s.renew_time); !st.ok()) return st;
  return s;
} catch (const nlohmann::json::exception& e) {
  return absl::InvalidArgumentError(absl::StrCat("Lease: ", e.what()));
}

nlohmann::json LeaseSpecJson(const LeaseSpec& s) {
  return {{"holderIdentity", s.holder},
          {"leaseDurationSeconds", s.duration_seconds},
          {"acquireTime", MicroTime(s.acquire_time)},
          {"renewTime", MicroTime(s.renew_time)},
          {"leaseTransitions", s.transitions}};
}

absl::Time LeaseExpiry(const LeaseSpec& spec, absl::Time now) {
  const absl::Time renewed = std::min(spec.renew_time, now);
  return renewed + absl::Seconds(spec.duration_seconds);
}

bool MayClaim(const LeaseSpec& spec, const std::string& me, absl::Time now) {
  return spec.holder.empty() || spec.holder == me || LeaseExpiry(spec, now) <= now;
}

LeaseSpec Claim(const LeaseSpec& current, const std::string& me, absl::Time now, int duration_seconds) {
  LeaseSpec next = current;
  if (current.holder != me) {
    next.holder = me;
    next.acquire_time = now;
    if (!current.holder.empty() || current.renew_time != absl::InfinitePast()) ++next.transitions;
  }
  next.renew_time = now;
  next.duration_seconds = duration_seconds;
  return next;
}

std::string LeaderElector::Path() const {
  return absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", opts_.lease_namespace, "/leases/", opts_.lease_name);
}

std::string LeaderElector::holder() const {
  std::lock_guard<std::mutex> l(mu_);
  return holder_;
}

void LeaderElector::SetLeading(bool leading) {
  std::lock_guard<std::mutex> l(change_mu_);  // Run and the watchdog: one change at a time
  if (leading_.exchange(leading) != leading) on_change_(leading);
}

absl::StatusOr<bool> LeaderElector::TryAcquireOrRenew(std::chrono::milliseconds* next) {
  *next = opts_.retry_period;
  const absl::Time now = absl::Now();
  const int duration_s = static_cast<int>((opts_.lease_duration.count() + 999) / 1000);
  auto current = client_.Get(Path());
  if (absl::IsNotFound(current.status())) {
    nlohmann::json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                            {"kind", "Lease"},
                            {"metadata", {{"name", opts_.lease_name}, {"namespace", opts_.lease_namespace}}},
                            {"spec", LeaseSpecJson(Claim({}, opts_.identity, now, duration_s))}};
    auto created = client_.Create(
        absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", opts_.lease_namespace, "/leases"), lease);
    if (absl::IsAlreadyExists(created.status())) return false;  // another replica was first
    if (!created.ok()) return created.status();
    std::lock_guard<std::mutex> l(mu_);
    holder_ = opts_.identity;
    return true;
  }
  if (!current.ok()) return current.status();
  auto spec = LeaseSpecOf(*current);
  if (!spec.ok()) return spec.status();
  {
    std::lock_guard<std::mutex> l(mu_);
    holder_ = spec->holder;
  }
  if (!MayClaim(*spec, opts_.identity, now)) {
    // A standby wakes up when the holder's claim runs out rather than a retry later:
    // that is what bounds a takeover by the lease duration.
    const absl::Duration left = LeaseExpiry(*spec, now) - now + absl::Milliseconds(20);
    *next = std::min(opts_.retry_period, std::chrono::milliseconds(absl::ToInt64Milliseconds(left)));
    return false;
  }
  nlohmann::json updated = *current;
  updated["spec"] = LeaseSpecJson(Claim(*spec, opts_.identity, now, duration_s));
  auto written = client_.Replace(Path(), updated);
  if (absl::IsAborted(written.status())) return false;  // lost a race; read again
  if (!written.ok()) return written.status();
  std::lock_guard<std::mutex> l(mu_);
  holder_ = opts_.identity;
  return true;
}

void LeaderElector::Release() {
  auto current = client_.Get(Path());
  if (!current.ok()) return;
  auto spec = LeaseSpecOf(*current);
  if (!spec.ok() || spec->holder != opts_.identity) return;
  nlohmann::json released = *current;
  spec->holder = "";
  spec->duration_seconds = 1;
  spec->renew_time = absl::Now();
  released["spec"] = LeaseSpecJson(*spec);
  (void)client_.Replace(Path(), released);
}

void LeaderElector::Run(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  std::atomic<Clock::rep> last_renew{Clock::now().time_since_epoch().count()};
  auto overdue = [&](Clock::time_point now) {
    return now - Clock::time_point(Clock::duration(last_renew.load())) > opts_.renew_deadline;
  };
  // Leadership ends when the renew deadline passes, even while a renewal is stuck in a
  // request that has not returned (an API server that accepts and never answers).
  std::jthread watchdog([&](std::stop_token st) {
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (leading() && overdue(Clock::now())) SetLeading(false);
    }
  });
  while (!stop.stop_requested()) {
    std::chrono::milliseconds next;
    auto held = TryAcquireOrRenew(&next);
    const auto now = Clock::now();
    if (held.ok() && *held) {
      last_renew = now.time_since_epoch().count();
      SetLeading(true);
    } else if (!leading() || overdue(now) || (held.ok() && !*held)) {
      // Someone else holds it, or we could not renew in time: stop before they start.
      SetLeading(false);
    }
    for (auto waited = std::chrono::milliseconds(0); waited < next && !stop.stop_requested();
         waited += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (leading()) {
    SetLeading(false);
    Release();
  }
}

}  // namespace weft::k8s
