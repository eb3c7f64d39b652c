#include "lib/net/rtnl_addr.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"

namespace weft::net {
namespace {

int AddrAttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  if (mnl_attr_type_valid(attr, IFA_MAX) < 0) return MNL_CB_OK;
  int type = mnl_attr_get_type(attr);
  if (type == IFA_FLAGS && mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
  tb[type] = attr;
  return MNL_CB_OK;
}

}  // namespace

void BuildNewAddr(NlRequest& req, int ifindex, const IpPrefix& prefix, const AddrOptions& opts) {
  req.header()->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = req.PutExtraHeader<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(prefix.address.af());
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix.length);
  ifa->ifa_scope = opts.scope;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  uint32_t flags = 0;
  if (opts.no_dad) flags |= IFA_F_NODAD;
  if (opts.no_prefix_route) flags |= IFA_F_NOPREFIXROUTE;
  ifa->ifa_flags = static_cast<uint8_t>(flags);
  const auto len = static_cast<uint16_t>(prefix.address.byte_length());
  mnl_attr_put(req.header(), IFA_LOCAL, len, prefix.address.bytes());
  mnl_attr_put(req.header(), IFA_ADDRESS, len, prefix.address.bytes());
  if (flags > 0xff) mnl_attr_put_u32(req.header(), IFA_FLAGS, flags);
}

absl::StatusOr<AddrInfo> ParseAddr(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
    return absl::InvalidArgumentError("RTM_NEWADDR: truncated ifaddrmsg");
  }
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  const nlattr* tb[IFA_MAX + 1] = {};
  if (mnl_attr_parse(nlh, sizeof(*ifa), AddrAttrCb, tb) != MNL_CB_OK) {
    return absl::InvalidArgumentError("RTM_NEWADDR: malformed attribute");
  }
  const Family family = ifa->ifa_family == AF_INET6 ? Family::kV6 : Family::kV4;
  const nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  const size_t want = family == Family::kV4 ? 4 : 16;
  if (a == nullptr || mnl_attr_get_payload_len(a) != want) {
    return absl::InvalidArgumentError("RTM_NEWADDR: no address");
  }
  AddrInfo info;
  info.ifindex = static_cast<int>(ifa->ifa_index);
  info.prefix = {IpAddress::FromBytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(a))),
                 ifa->ifa_prefixlen};
  info.scope = ifa->ifa_scope;
  info.flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
  return info;
}

absl::Status AddAddress(NlSocket& nl, int ifindex, const IpPrefix& prefix,
                        const AddrOptions& opts) {
  NlRequest req(RTM_NEWADDR, 0);
  BuildNewAddr(req, ifindex, prefix, opts);
  return Annotate(nl.Transact(req), absl::StrCat("add address ", prefix.ToString()));
}

absl::Status DeleteAddress(NlSocket& nl, int ifindex, const IpPrefix& prefix) {
  NlRequest req(RTM_DELADDR, 0);
  auto* ifa = req.PutExtraHeader<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(prefix.address.af());
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix.length);
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  mnl_attr_put(req.header(), IFA_LOCAL, static_cast<uint16_t>(prefix.address.byte_length()),
               prefix.address.bytes());
  return Annotate(nl.Transact(req), absl::StrCat("delete address ", prefix.ToString()));
}

absl::StatusOr<std::vector<AddrInfo>> ListAddresses(NlSocket& nl, int ifindex) {
  NlRequest req(RTM_GETADDR, NLM_F_DUMP);
  req.PutExtraHeader<ifaddrmsg>()->ifa_family = AF_UNSPEC;
  std::vector<AddrInfo> out;
  RETURN_IF_ERROR(nl.Transact(req, [&](const nlmsghdr* nlh) -> absl::Status {
    ASSIGN_OR_RETURN(AddrInfo info, ParseAddr(nlh));
    if (ifindex == 0 || info.ifindex == ifindex) out.push_back(info);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace weft::net

namespace weft::net {

absl::StatusOr<std::vector<IpAddress>> ListLocalIps(NlSocket& nl) {
  ASSIGN_OR_RETURN(std::vector<AddrInfo> addrs, ListAddresses(nl, 0));
  std::vector<IpAddress> out;
  for (const auto& a : addrs) out.push_back(a.prefix.address);
  return out;
}

}  // namespace weft::net
