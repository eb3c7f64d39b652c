// Neighbour (ARP/NDP) entries over rtnetlink.
#ifndef WEFT_LIB_NET_RTNL_NEIGH_H_
#define WEFT_LIB_NET_RTNL_NEIGH_H_

#include "absl/status/status.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"

namespace weft::net {

void BuildPermanentNeighbor(NlRequest& req, int ifindex, const IpAddress& ip, const MacAddress& mac);

// Adds or replaces a permanent entry: `ip` is at `mac` on link `ifindex`. No ARP or
// neighbour solicitation is ever sent for it.
absl::Status SetPermanentNeighbor(NlSocket& nl, int ifindex, const IpAddress& ip,
                                  const MacAddress& mac);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_RTNL_NEIGH_H_
