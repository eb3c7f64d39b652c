// Interface addresses over rtnetlink.
#ifndef WEFT_LIB_NET_RTNL_ADDR_H_
#define WEFT_LIB_NET_RTNL_ADDR_H_

#include <linux/netlink.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"

namespace weft::net {

struct AddrInfo {
  int ifindex = 0;
  IpPrefix prefix;
  uint8_t scope = 0;   // RT_SCOPE_*
  uint32_t flags = 0;  // IFA_F_*
};

struct AddrOptions {
  uint8_t scope = 0;  // RT_SCOPE_UNIVERSE
  bool no_dad = false;  // IFA_F_NODAD: usable at once, no duplicate detection (IPv6)
  bool no_prefix_route = false;  // IFA_F_NOPREFIXROUTE
};

void BuildNewAddr(NlRequest& req, int ifindex, const IpPrefix& prefix, const AddrOptions& opts);
absl::StatusOr<AddrInfo> ParseAddr(const nlmsghdr* nlh);

// AlreadyExists if the address is already on the link.
absl::Status AddAddress(NlSocket& nl, int ifindex, const IpPrefix& prefix,
                        const AddrOptions& opts = {});
absl::Status DeleteAddress(NlSocket& nl, int ifindex, const IpPrefix& prefix);
// Addresses of one link (ifindex > 0) or of all links (0).
absl::StatusOr<std::vector<AddrInfo>> ListAddresses(NlSocket& nl, int ifindex);
// Every address of the socket's namespace, without prefix lengths: the node's own
// addresses, as the NAT classifier needs them to recognize "no NAT".
absl::StatusOr<std::vector<IpAddress>> ListLocalIps(NlSocket& nl);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_RTNL_ADDR_H_
