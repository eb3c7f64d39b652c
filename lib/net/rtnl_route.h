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
};

void BuildNewRoute(NlRequest& req, const Route& route, bool replace);
// Parses an RTM_NEWROUTE message; routes without an output interface (multipath, ...)
// come back with ifindex 0.
absl::StatusOr<Route> ParseRoute(const nlmsghdr* nlh);

// With replace, an existing route to the same destination is replaced; without,
// AlreadyExists.
absl::Status AddRoute(NlSocket& nl, const Route& route, bool replace = false);
absl::Status DeleteRoute(NlSocket& nl, const Route& route);
// Unicast routes of `family` in the main table.
absl::StatusOr<std::vector<Route>> ListRoutes(NlSocket& nl, Family family);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_RTNL_ROUTE_H_
