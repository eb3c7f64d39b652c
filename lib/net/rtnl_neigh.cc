#include "lib/net/rtnl_neigh.h"

#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"

namespace weft::net {

void BuildPermanentNeighbor(NlRequest& req, int ifindex, const IpAddress& ip, const MacAddress& mac) {
  req.header()->nlmsg_type = RTM_NEWNEIGH;
  req.header()->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
  auto* nd = req.PutExtraHeader<ndmsg>();
  nd->ndm_family = static_cast<uint8_t>(ip.af());
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_PERMANENT;
  mnl_attr_put(req.header(), NDA_DST, static_cast<uint16_t>(ip.byte_length()), ip.bytes());
  mnl_attr_put(req.header(), NDA_LLADDR, 6, mac.bytes.data());
}

absl::Status SetPermanentNeighbor(NlSocket& nl, int ifindex, const IpAddress& ip,
                                  const MacAddress& mac) {
  NlRequest req(RTM_NEWNEIGH, 0);
  BuildPermanentNeighbor(req, ifindex, ip, mac);
  return Annotate(nl.Transact(req), absl::StrCat("add neighbour ", ip.ToString()));
}

}  // namespace weft::net
