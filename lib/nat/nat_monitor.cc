#include "lib/nat/nat_monitor.h"

#include <linux/rtnetlink.h>
#include <poll.h>

#include <algorithm>
#include <thread>

#include "lib/nat/fresh_flows.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_addr.h"
#include "lib/status/status_macros.h"

namespace weft::nat {
namespace {

absl::StatusOr<std::vector<net::IpAddress>> LocalIps() {
  ASSIGN_OR_RETURN(net::NlSocket nl, net::NlSocket::Open());
  return net::ListLocalIps(nl);
}

}  // namespace

bool SameVerdict(const Verdict& a, const Verdict& b) {
  return a.mapping == b.mapping && a.udp_blocked == b.udp_blocked && a.no_route == b.no_route &&
         a.reflexive == b.reflexive && a.port_preserved == b.port_preserved && a.filtering == b.filtering &&
         a.hairpin == b.hairpin;
}

absl::Status RunNatMonitor(const MonitorOptions& opts, const MonitorCallback& on_round, std::stop_token stop) {
  ASSIGN_OR_RETURN(net::NlSocket watch,
                   net::NlSocket::OpenSubscribed(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
                                                 RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE));
  std::optional<Verdict> last;
  std::optional<Verdict> last6;
  std::optional<Observations> last_extras;  // the last round that ran the extra tests
  bool first = true;
  // A round asked for (probe_now: a peer saw us at another port) probes a fresh flow;
  // if none is fresh yet, the next rounds take the first that is.
  bool urgent = false;
  int since_extras = 0;
  FreshFlows fresh(opts.fresh_after);
  std::vector<net::Endpoint> targets = opts.targets;
  while (!stop.stop_requested()) {
    if (opts.resolve_targets) {
      auto resolved = opts.resolve_targets();
      if (!resolved.ok()) {
        for (auto until = Clock::now() + opts.retry; !stop.stop_requested() && Clock::now() < until;) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        continue;
      }
      targets = *std::move(resolved);
    }
    ASSIGN_OR_RETURN(std::vector<net::IpAddress> ips, LocalIps());
    fresh.SetTargets(targets);
    if (opts.fresh_destinations) fresh.Offer(opts.fresh_destinations());
    if (opts.sightings) {
      for (const auto& e : opts.sightings()) fresh.Sighted(e);
    }
    // The first round reports the mapping as soon as the targets answer (peers need the
    // endpoint to connect); the hairpin and filtering tests (up to 0.9 s more) follow in
    // the next round, right after.
    const auto start = Clock::now();
    NatProber::Options base;
    if (urgent) base.fresh = fresh.Pick(start);
    if (base.fresh) urgent = false;
    const bool extras = !first && !base.fresh && opts.extras_wait.count() > 0 &&
                        (!last_extras || since_extras + 1 >= opts.extras_every) && fresh.QuietForFilteringTests(start);
    ASSIGN_OR_RETURN(PortProbeReport report,
                     ProbePort(opts.port, targets, ips, base, extras ? opts.extras_wait : std::chrono::milliseconds(0)));
    const auto now = Clock::now();
    if (base.fresh) fresh.Probed(*base.fresh, now);
    for (const auto& e : report.solicited_from) fresh.Solicited(e, now);
    fresh.Learn(report.observations);
    if (extras) {
      last_extras = report.observations;
      since_extras = 0;
    } else if (last_extras) {
      ++since_extras;
      report.observations.answered_from_other_address = last_extras->answered_from_other_address;
      report.observations.answered_from_other_port = last_extras->answered_from_other_port;
      report.observations.hairpin = last_extras->hairpin;
    }
    report.verdict = fresh.Settle(Classify(report.observations), report.observations);
    if (!opts.targets6.empty() && !first) {
      // From the second round (right after the first: IPv4's verdict, which pairs wait
      // for, is not held up by an IPv6 firewall that drops UDP). No fresh flows nor
      // filtering tests: a global address has no NAT to test, and NPTv6 translates the
      // prefix alone (ports kept).
      if (auto r6 = ProbePort(opts.port, opts.targets6, ips, NatProber::Options{}, std::chrono::milliseconds(0));
          r6.ok()) {
        report.verdict6 = r6->verdict;
      }
    }
    const bool changed6 = report.verdict6.has_value() != last6.has_value() ||
                          (last6 && !SameVerdict(*last6, *report.verdict6));
    last6 = report.verdict6;
    const bool changed = !last || !SameVerdict(*last, report.verdict) || changed6;
    on_round(report, last, changed);
    // A new mapping is tested again in full next round (its filtering, its hairpin).
    if (last && last_extras && (last->mapping != report.verdict.mapping || last->reflexive != report.verdict.reflexive)) {
      since_extras = opts.extras_every;
    }
    last = report.verdict;
    if (first) {
      first = false;
      continue;
    }
    // Wait for the interval, or less if the node's addressing changes.
    const auto until = Clock::now() + opts.interval;
    while (!stop.stop_requested() && Clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      pollfd p{watch.fd(), POLLIN, 0};
      // Wake at least every 100 ms to notice a stop request.
      if (opts.probe_now && opts.probe_now()) {
        urgent = true;
        break;
      }
      if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100))) > 0 && watch.DrainNotifications() > 0) {
        std::this_thread::sleep_for(opts.settle);
        watch.DrainNotifications();
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace weft::nat
