// Routes over rtnetlink.
#ifndef WEFT_LIB_NET_RTNL_ROUTE_H_
#define WEFT_LIB_NET_RTNL_ROUTE_H_

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"

namespace weft::net {

struct Route {
  IpPrefix dst;
  std::optional<IpAddress> gateway;
  int ifindex = 0;
  uint8_t scope = RT_SCOPE_UNIVERSE;
  uint8_t protocol = RTPROT_BOOT;
  uint32_t table = RT_TABLE_MAIN;
  bool onlink = false;  // RTNH_F_ONLINK: gateway reachable on the link without a subnet route
  int mtu = 0;          // RTAX_MTU metric ("ip route ... mtu N"); 0: none, the link's applies
};

void BuildNewRoute(NlRequest& req, const Route& route, bool replace);
// Parses an RTM_NEWROUTE message; routes without an output interface (multipath, ...)
// come back with ifindex 0.
absl::StatusOr<Route> ParseRoute(const nlmsghdr* nlh);

// With replace, an existing route to the same destination is replaced; without,
// AlreadyExists.
absl::Status AddRoute(NlSocket& nl, const Route& route, bool replace = false);
absl::Status DeleteRoute(NlSocket& nl, const Route& route);
// RTM_GETROUTE for one destination: what the kernel would use to send to `dst` (nothing
// is sent).
void BuildGetRoute(NlRequest& req, const IpAddress& dst);
absl::StatusOr<Route> GetRoute(NlSocket& nl, const IpAddress& dst);

// Unicast routes of `family` in the main table.
absl::StatusOr<std::vector<Route>> ListRoutes(NlSocket& nl, Family family);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_RTNL_ROUTE_H_
