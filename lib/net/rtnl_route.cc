#include "lib/net/rtnl_route.h"

#include <libmnl/libmnl.h>

#include "absl/strings/str_cat.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"

namespace weft::net {
namespace {

int RouteAttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  if (mnl_attr_type_valid(attr, RTA_MAX) < 0) return MNL_CB_OK;
  int type = mnl_attr_get_type(attr);
  if ((type == RTA_OIF || type == RTA_TABLE) && mnl_attr_validate(attr, MNL_TYPE_U32) < 0) {
    return MNL_CB_ERROR;
  }
  if (type == RTA_METRICS && mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) return MNL_CB_ERROR;
  tb[type] = attr;
  return MNL_CB_OK;
}

int MetricsAttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  if (mnl_attr_type_valid(attr, RTAX_MAX) < 0) return MNL_CB_OK;
  int type = mnl_attr_get_type(attr);
  if (type == RTAX_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
  tb[type] = attr;
  return MNL_CB_OK;
}

void FillRouteHeader(NlRequest& req, const Route& route) {
  auto* rtm = req.PutExtraHeader<rtmsg>();
  rtm->rtm_family = static_cast<uint8_t>(route.dst.address.af());
  rtm->rtm_dst_len = static_cast<uint8_t>(route.dst.length);
  rtm->rtm_table = static_cast<uint8_t>(route.table < 256 ? route.table : uint32_t{RT_TABLE_UNSPEC});
  rtm->rtm_protocol = route.protocol;
  rtm->rtm_scope = route.scope;
  rtm->rtm_type = RTN_UNICAST;
  if (route.onlink) rtm->rtm_flags |= RTNH_F_ONLINK;
  nlmsghdr* nlh = req.header();
  if (route.table >= 256) mnl_attr_put_u32(nlh, RTA_TABLE, route.table);
  const auto len = static_cast<uint16_t>(route.dst.address.byte_length());
  if (route.dst.length > 0) mnl_attr_put(nlh, RTA_DST, len, route.dst.address.bytes());
  if (route.gateway) mnl_attr_put(nlh, RTA_GATEWAY, len, route.gateway->bytes());
  if (route.ifindex > 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(route.ifindex));
}

}  // namespace

void BuildNewRoute(NlRequest& req, const Route& route, bool replace) {
  req.header()->nlmsg_flags |= NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL);
  FillRouteHeader(req, route);
  if (route.mtu > 0) {
    nlattr* metrics = mnl_attr_nest_start(req.header(), RTA_METRICS);
    mnl_attr_put_u32(req.header(), RTAX_MTU, static_cast<uint32_t>(route.mtu));
    mnl_attr_nest_end(req.header(), metrics);
  }
}

absl::StatusOr<Route> ParseRoute(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(rtmsg)) {
    return absl::InvalidArgumentError("RTM_NEWROUTE: truncated rtmsg");
  }
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  const nlattr* tb[RTA_MAX + 1] = {};
  if (mnl_attr_parse(nlh, sizeof(*rtm), RouteAttrCb, tb) != MNL_CB_OK) {
    return absl::InvalidArgumentError("RTM_NEWROUTE: malformed attribute");
  }
  const Family family = rtm->rtm_family == AF_INET6 ? Family::kV6 : Family::kV4;
  const size_t len = family == Family::kV4 ? 4 : 16;
  Route r;
  r.dst.length = rtm->rtm_dst_len;
  r.dst.address = IpAddress::FromBytes(family, std::array<uint8_t, 16>{}.data());
  if (tb[RTA_DST]) {
    if (mnl_attr_get_payload_len(tb[RTA_DST]) != len) {
      return absl::InvalidArgumentError("RTM_NEWROUTE: bad RTA_DST");
    }
    r.dst.address = IpAddress::FromBytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(tb[RTA_DST])));
  }
  if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == len) {
    r.gateway = IpAddress::FromBytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(tb[RTA_GATEWAY])));
  }
  if (tb[RTA_OIF]) r.ifindex = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  r.table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
  r.scope = rtm->rtm_scope;
  r.protocol = rtm->rtm_protocol;
  r.onlink = (rtm->rtm_flags & RTNH_F_ONLINK) != 0;
  if (tb[RTA_METRICS]) {
    const nlattr* mx[RTAX_MAX + 1] = {};
    if (mnl_attr_parse_nested(tb[RTA_METRICS], MetricsAttrCb, mx) != MNL_CB_OK) {
      return absl::InvalidArgumentError("RTM_NEWROUTE: malformed RTA_METRICS");
    }
    if (mx[RTAX_MTU]) r.mtu = static_cast<int>(mnl_attr_get_u32(mx[RTAX_MTU]));
  }
  return r;
}

void BuildGetRoute(NlRequest& req, const IpAddress& dst) {
  auto* rtm = req.PutExtraHeader<rtmsg>();
  rtm->rtm_family = static_cast<uint8_t>(dst.af());
  rtm->rtm_dst_len = static_cast<uint8_t>(dst.bit_length());
  mnl_attr_put(req.header(), RTA_DST, static_cast<uint16_t>(dst.byte_length()), dst.bytes());
}

absl::StatusOr<Route> GetRoute(NlSocket& nl, const IpAddress& dst) {
  NlRequest req(RTM_GETROUTE, 0);
  BuildGetRoute(req, dst);
  std::optional<Route> found;
  RETURN_IF_ERROR(Annotate(nl.Transact(req, [&](const nlmsghdr* nlh) -> absl::Status {
                             if (nlh->nlmsg_type != RTM_NEWROUTE) return absl::OkStatus();
                             ASSIGN_OR_RETURN(Route r, ParseRoute(nlh));
                             found = r;
                             return absl::OkStatus();
                           }),
                           absl::StrCat("route to ", dst.ToString())));
  if (!found) return absl::NotFoundError(absl::StrCat("no route to ", dst.ToString()));
  return *found;
}

absl::Status AddRoute(NlSocket& nl, const Route& route, bool replace) {
  NlRequest req(RTM_NEWROUTE, 0);
  BuildNewRoute(req, route, replace);
  return Annotate(nl.Transact(req), absl::StrCat("add route ", route.dst.ToString()));
}

absl::Status DeleteRoute(NlSocket& nl, const Route& route) {
  NlRequest req(RTM_DELROUTE, 0);
  FillRouteHeader(req, route);
  return Annotate(nl.Transact(req), absl::StrCat("delete route ", route.dst.ToString()));
}

absl::StatusOr<std::vector<Route>> ListRoutes(NlSocket& nl, Family family) {
  NlRequest req(RTM_GETROUTE, NLM_F_DUMP);
  req.PutExtraHeader<rtmsg>()->rtm_family = family == Family::kV4 ? AF_INET : AF_INET6;
  std::vector<Route> out;
  RETURN_IF_ERROR(nl.Transact(req, [&](const nlmsghdr* nlh) -> absl::Status {
    const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
    if (rtm->rtm_type != RTN_UNICAST) return absl::OkStatus();
    ASSIGN_OR_RETURN(Route r, ParseRoute(nlh));
    if (r.table == RT_TABLE_MAIN) out.push_back(r);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace weft::net
