#include "lib/net/rtnl_link.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"
#include "absl/strings/string_view.h"

namespace weft::net {
namespace {

void PutLinkAttrs(nlmsghdr* nlh, absl::string_view name, const std::optional<MacAddress>& mac,
                  int mtu) {
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str());
  if (mac) mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac->bytes.data());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
}

int LinkAttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  int type = mnl_attr_get_type(attr);
  if (mnl_attr_type_valid(attr, IFLA_MAX) < 0) return MNL_CB_OK;  // newer kernel: skip
  switch (type) {
    case IFLA_IFNAME:
    case IFLA_IFALIAS:
      if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0) return MNL_CB_ERROR;
      break;
    case IFLA_MTU:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
      break;
    case IFLA_LINKINFO:
      if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) return MNL_CB_ERROR;
      break;
    default:
      break;
  }
  tb[type] = attr;
  return MNL_CB_OK;
}

int LinkInfoAttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  if (mnl_attr_type_valid(attr, IFLA_INFO_MAX) < 0) return MNL_CB_OK;
  tb[mnl_attr_get_type(attr)] = attr;
  return MNL_CB_OK;
}

}  // namespace

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }

void BuildNewVeth(NlRequest& req, const VethSpec& spec) {
  nlmsghdr* nlh = req.header();
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
  req.PutExtraHeader<ifinfomsg>()->ifi_family = AF_UNSPEC;
  PutLinkAttrs(nlh, spec.name, spec.mac, spec.mtu);
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside VETH_INFO_PEER.
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(nlh));
  std::memset(peer_ifi, 0, sizeof(*peer_ifi));
  nlh->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
  PutLinkAttrs(nlh, spec.peer_name, spec.peer_mac, spec.mtu);
  if (spec.peer_netns_fd >= 0) {
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(spec.peer_netns_fd));
  }
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
}

void BuildNewLink(NlRequest& req, absl::string_view name, absl::string_view kind) {
  nlmsghdr* nlh = req.header();
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
  req.PutExtraHeader<ifinfomsg>()->ifi_family = AF_UNSPEC;
  PutLinkAttrs(nlh, name, std::nullopt, 0);
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, std::string(kind).c_str());
  mnl_attr_nest_end(nlh, linkinfo);
}

absl::Status CreateLink(NlSocket& nl, absl::string_view name, absl::string_view kind) {
  NlRequest req(RTM_NEWLINK, 0);
  BuildNewLink(req, name, kind);
  absl::Status s = nl.Transact(req);
  // EOPNOTSUPP: "Unknown device type" (no such kind, and its module would not load).
  if (!s.ok() && (absl::IsUnimplemented(s) || absl::StrContains(s.message(), "not supported"))) {
    return absl::UnimplementedError(absl::StrCat("create ", kind, " link ", name, ": the kernel has no ", kind,
                                                 " links (", s.message(), ")"));
  }
  return Annotate(s, absl::StrCat("create ", kind, " link ", name));
}

void BuildLinkByName(NlRequest& req, absl::string_view name) {
  req.PutExtraHeader<ifinfomsg>()->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(req.header(), IFLA_IFNAME, std::string(name).c_str());
}

absl::StatusOr<LinkInfo> ParseLink(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) {
    return absl::InvalidArgumentError("RTM_NEWLINK: truncated ifinfomsg");
  }
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  const nlattr* tb[IFLA_MAX + 1] = {};
  if (mnl_attr_parse(nlh, sizeof(*ifi), LinkAttrCb, tb) != MNL_CB_OK) {
    return absl::InvalidArgumentError("RTM_NEWLINK: malformed attribute");
  }
  LinkInfo link;
  link.index = ifi->ifi_index;
  link.flags = ifi->ifi_flags;
  if (tb[IFLA_IFNAME]) link.name = mnl_attr_get_str(tb[IFLA_IFNAME]);
  if (tb[IFLA_IFALIAS]) link.alias = mnl_attr_get_str(tb[IFLA_IFALIAS]);
  if (tb[IFLA_MTU]) link.mtu = static_cast<int>(mnl_attr_get_u32(tb[IFLA_MTU]));
  if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6) {
    std::memcpy(link.mac.bytes.data(), mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
  }
  if (tb[IFLA_LINKINFO]) {
    const nlattr* info[IFLA_INFO_MAX + 1] = {};
    if (mnl_attr_parse_nested(tb[IFLA_LINKINFO], LinkInfoAttrCb, info) == MNL_CB_OK &&
        info[IFLA_INFO_KIND] && mnl_attr_validate(info[IFLA_INFO_KIND], MNL_TYPE_STRING) >= 0) {
      link.kind.assign(static_cast<const char*>(mnl_attr_get_payload(info[IFLA_INFO_KIND])),
                       strnlen(static_cast<const char*>(mnl_attr_get_payload(info[IFLA_INFO_KIND])),
                               mnl_attr_get_payload_len(info[IFLA_INFO_KIND])));
    }
  }
  return link;
}

absl::Status CreateVeth(NlSocket& nl, const VethSpec& spec) {
  NlRequest req(RTM_NEWLINK, 0);
  BuildNewVeth(req, spec);
  return Annotate(nl.Transact(req), absl::StrCat("create veth ", spec.name, "/", spec.peer_name));
}

absl::StatusOr<LinkInfo> GetLink(NlSocket& nl, absl::string_view name) {
  NlRequest req(RTM_GETLINK, 0);
  BuildLinkByName(req, name);
  absl::StatusOr<LinkInfo> link = absl::NotFoundError(absl::StrCat("link ", name));
  RETURN_IF_ERROR(Annotate(nl.Transact(req,
                                       [&](const nlmsghdr* nlh) {
                                         link = ParseLink(nlh);
                                         return link.status();
                                       }),
                           absl::StrCat("get link ", name)));
  return link;
}

absl::StatusOr<std::vector<LinkInfo>> ListLinks(NlSocket& nl) {
  NlRequest req(RTM_GETLINK, NLM_F_DUMP);
  req.PutExtraHeader<ifinfomsg>()->ifi_family = AF_UNSPEC;
  std::vector<LinkInfo> links;
  RETURN_IF_ERROR(nl.Transact(req, [&](const nlmsghdr* nlh) -> absl::Status {
    ASSIGN_OR_RETURN(LinkInfo link, ParseLink(nlh));
    links.push_back(std::move(link));
    return absl::OkStatus();
  }));
  return links;
}

absl::Status DeleteLink(NlSocket& nl, absl::string_view name) {
  NlRequest req(RTM_DELLINK, 0);
  BuildLinkByName(req, name);
  return Annotate(nl.Transact(req), absl::StrCat("delete link ", name));
}

namespace {

absl::Status ChangeUp(NlSocket& nl, int index, bool up, absl::string_view alias) {
  NlRequest req(RTM_NEWLINK, 0);
  auto* ifi = req.PutExtraHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  ifi->ifi_flags = up ? IFF_UP : 0;
  ifi->ifi_change = IFF_UP;
  if (!alias.empty()) mnl_attr_put_strz(req.header(), IFLA_IFALIAS, std::string(alias).c_str());
  return Annotate(nl.Transact(req), absl::StrCat("set link ", index, up ? " up" : " down"));
}

}  // namespace

absl::Status SetLinkUp(NlSocket& nl, int index, absl::string_view alias) {
  return ChangeUp(nl, index, true, alias);
}

absl::Status SetLinkDown(NlSocket& nl, int index) { return ChangeUp(nl, index, false, ""); }

absl::Status MoveLinkToNetns(NlSocket& nl, int index, int netns_fd, absl::string_view new_name) {
  NlRequest req(RTM_NEWLINK, 0);
  auto* ifi = req.PutExtraHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  mnl_attr_put_u32(req.header(), IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  if (!new_name.empty()) mnl_attr_put_strz(req.header(), IFLA_IFNAME, std::string(new_name).c_str());
  return Annotate(nl.Transact(req), absl::StrCat("move link ", index, " to netns"));
}

absl::Status SetLinkMtu(NlSocket& nl, int index, int mtu) {
  NlRequest req(RTM_NEWLINK, 0);
  auto* ifi = req.PutExtraHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  mnl_attr_put_u32(req.header(), IFLA_MTU, static_cast<uint32_t>(mtu));
  return Annotate(nl.Transact(req), absl::StrCat("set link ", index, " mtu ", mtu));
}

absl::StatusOr<LinkInfo> GetLinkByIndex(NlSocket& nl, int index) {
  ASSIGN_OR_RETURN(std::vector<LinkInfo> links, ListLinks(nl));
  for (auto& l : links) {
    if (l.index == index) return l;
  }
  return absl::NotFoundError(absl::StrCat("no link with index ", index));
}

}  // namespace weft::net
