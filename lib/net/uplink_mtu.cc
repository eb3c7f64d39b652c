#include "lib/net/uplink_mtu.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_route.h"
#include "lib/status/status_macros.h"

namespace weft::net {

int TunnelMtu(int uplink_mtu) { return std::max(kMinTunnelMtu, uplink_mtu - kWireGuardOverhead); }

namespace {

absl::StatusOr<int> RouteMtu(NlSocket& nl, const Route& r) {
  if (r.mtu > 0) return r.mtu;
  if (r.ifindex <= 0) return absl::NotFoundError("route without an output device");
  ASSIGN_OR_RETURN(LinkInfo link, GetLinkByIndex(nl, r.ifindex));
  return link.mtu;
}

}  // namespace

absl::StatusOr<int> UplinkMtu(NlSocket& nl, const std::vector<IpAddress>& destinations) {
  int best = 0;
  absl::Status last = absl::NotFoundError("no route to any destination");
  if (destinations.empty()) {
    ASSIGN_OR_RETURN(std::vector<Route> routes, ListRoutes(nl, Family::kV4));
    for (const Route& r : routes) {
      if (r.dst.length != 0) continue;
      auto m = RouteMtu(nl, r);
      if (m.ok() && *m > 0) best = best == 0 ? *m : std::min(best, *m);
    }
    if (best == 0) return absl::NotFoundError("no default route");
    return best;
  }
  for (const IpAddress& d : destinations) {
    auto r = GetRoute(nl, d);
    if (!r.ok()) {
      last = r.status();
      continue;
    }
    auto m = RouteMtu(nl, *r);
    if (!m.ok()) {
      last = m.status();
      continue;
    }
    if (*m > 0) best = best == 0 ? *m : std::min(best, *m);
  }
  if (best == 0) return last;
  return best;
}

}  // namespace weft::net
