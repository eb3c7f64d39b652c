// The rtnetlink builders and parsers, checked as bytes without a kernel.
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lib/net/nl_attr.h"
#include "lib/net/rtnl_addr.h"
#include "lib/net/rtnl_link.h"
#include "lib/net/rtnl_neigh.h"
#include "lib/net/rtnl_route.h"
#include "lib/net/uplink_mtu.h"
#include "lib/testing/status_matchers.h"

namespace weft::net {
namespace {

std::map<int, const nlattr*> Attrs(const nlmsghdr* nlh, size_t offset) {
  std::map<int, const nlattr*> out;
  ForEachAttr(nlh, offset, [&](const nlattr* a) { out[mnl_attr_get_type(a)] = a; });
  return out;
}

std::map<int, const nlattr*> Nested(const nlattr* nest) {
  std::map<int, const nlattr*> out;
  ForEachNested(nest, [&](const nlattr* a) { out[mnl_attr_get_type(a)] = a; });
  return out;
}

TEST(RtnlLinkTest, VethRequestPutsPeerInTargetNetnsUnderFinalName) {
  NlRequest req(RTM_NEWLINK, 0);
  VethSpec spec{.name = "weft0123456789a",
                .mac = MacAddress{{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}},
                .peer_name = "eth0",
                .peer_mac = MacAddress{{0x0a, 1, 2, 3, 4, 5}},
                .peer_netns_fd = 7,
                .mtu = 1420};
  BuildNewVeth(req, spec);
  const nlmsghdr* nlh = req.header();
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  auto top = Attrs(nlh, sizeof(ifinfomsg));
  ASSERT_TRUE(top.count(IFLA_IFNAME));
  EXPECT_STREQ(mnl_attr_get_str(top[IFLA_IFNAME]), "weft0123456789a");
  EXPECT_EQ(mnl_attr_get_u32(top[IFLA_MTU]), 1420u);
  auto info = Nested(top[IFLA_LINKINFO]);
  EXPECT_STREQ(mnl_attr_get_str(info[IFLA_INFO_KIND]), "veth");
  auto data = Nested(info[IFLA_INFO_DATA]);
  const nlattr* peer = data[VETH_INFO_PEER];
  ASSERT_NE(peer, nullptr);
  // The peer nest holds an ifinfomsg, then the peer's attributes.
  const char* p = static_cast<const char*>(mnl_attr_get_payload(peer));
  const size_t peer_len = mnl_attr_get_payload_len(peer);
  ASSERT_GT(peer_len, sizeof(ifinfomsg));
  std::map<int, const nlattr*> peer_attrs;
  for (size_t off = MNL_ALIGN(sizeof(ifinfomsg)); off < peer_len;) {
    auto* a = reinterpret_cast<const nlattr*>(p + off);
    peer_attrs[mnl_attr_get_type(a)] = a;
    off += MNL_ALIGN(a->nla_len);
  }
  EXPECT_STREQ(mnl_attr_get_str(peer_attrs[IFLA_IFNAME]), "eth0");
  EXPECT_EQ(mnl_attr_get_u32(peer_attrs[IFLA_NET_NS_FD]), 7u);
  EXPECT_EQ(mnl_attr_get_payload_len(peer_attrs[IFLA_ADDRESS]), 6u);
}

TEST(RtnlLinkTest, ParseLinkReadsWhatALinkDumpCarries) {
  // Build an RTM_NEWLINK as the kernel would send it, then parse it.
  NlRequest msg(RTM_NEWLINK, 0);
  auto* ifi = msg.PutExtraHeader<ifinfomsg>();
  ifi->ifi_index = 42;
  ifi->ifi_flags = 1;  // IFF_UP
  mnl_attr_put_strz(msg.header(), IFLA_IFNAME, "weftabc");
  mnl_attr_put_u32(msg.header(), IFLA_MTU, 1400);
  mnl_attr_put_strz(msg.header(), IFLA_IFALIAS, "weft:n:c:eth0");
  const uint8_t mac[6] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
  mnl_attr_put(msg.header(), IFLA_ADDRESS, 6, mac);
  nlattr* li = mnl_attr_nest_start(msg.header(), IFLA_LINKINFO);
  mnl_attr_put_strz(msg.header(), IFLA_INFO_KIND, "veth");
  mnl_attr_nest_end(msg.header(), li);
  auto link = ParseLink(msg.header());
  WEFT_ASSERT_OK(link);
  EXPECT_EQ(link->index, 42);
  EXPECT_EQ(link->name, "weftabc");
  EXPECT_EQ(link->mtu, 1400);
  EXPECT_EQ(link->alias, "weft:n:c:eth0");
  EXPECT_EQ(link->kind, "veth");
  EXPECT_EQ(link->mac.ToString(), "ee:ee:ee:ee:ee:ee");
  EXPECT_TRUE(link->up());
}

TEST(RtnlLinkTest, ParseLinkRejectsTruncatedAndMalformed) {
  NlRequest empty(RTM_NEWLINK, 0);
  EXPECT_FALSE(ParseLink(empty.header()).ok());
  NlRequest bad(RTM_NEWLINK, 0);
  bad.PutExtraHeader<ifinfomsg>();
  mnl_attr_put_u16(bad.header(), IFLA_MTU, 3);  // MTU must be a u32
  EXPECT_FALSE(ParseLink(bad.header()).ok());
}

TEST(RtnlAddrTest, RoundTripsThroughParse) {
  NlRequest req(RTM_NEWADDR, 0);
  auto prefix = IpPrefix::Parse("fd00::5/128");
  BuildNewAddr(req, 3, *prefix, {.scope = 0, .no_dad = true, .no_prefix_route = true});
  auto info = ParseAddr(req.header());
  WEFT_ASSERT_OK(info);
  EXPECT_EQ(info->ifindex, 3);
  EXPECT_EQ(info->prefix, *prefix);
  EXPECT_NE(info->flags & IFA_F_NODAD, 0u);
  EXPECT_NE(info->flags & IFA_F_NOPREFIXROUTE, 0u);
}

TEST(RtnlRouteTest, DefaultRouteViaOnlinkGateway) {
  NlRequest req(RTM_NEWROUTE, 0);
  Route r{.dst = IpPrefix::Default(Family::kV4), .gateway = *IpAddress::Parse("169.254.1.1"),
          .ifindex = 2, .onlink = true};
  BuildNewRoute(req, r, /*replace=*/true);
  EXPECT_NE(req.header()->nlmsg_flags & NLM_F_REPLACE, 0);
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.header()));
  EXPECT_EQ(rtm->rtm_dst_len, 0);
  auto attrs = Attrs(req.header(), sizeof(rtmsg));
  EXPECT_EQ(attrs.count(RTA_DST), 0u);  // a default route carries no destination
  auto back = ParseRoute(req.header());
  WEFT_ASSERT_OK(back);
  EXPECT_EQ(back->gateway->ToString(), "169.254.1.1");
  EXPECT_EQ(back->ifindex, 2);
  EXPECT_TRUE(back->onlink);
  EXPECT_EQ(back->dst, IpPrefix::Default(Family::kV4));
}

TEST(RtnlRouteTest, RouteMtuIsAMetric) {
  NlRequest req(RTM_NEWROUTE, 0);
  BuildNewRoute(req, {.dst = *IpPrefix::Parse("10.244.2.0/24"), .ifindex = 7, .mtu = 1312}, /*replace=*/true);
  auto back = ParseRoute(req.header());
  WEFT_ASSERT_OK(back);
  EXPECT_EQ(back->mtu, 1312);
  NlRequest none(RTM_NEWROUTE, 0);
  BuildNewRoute(none, {.dst = *IpPrefix::Parse("10.244.2.0/24"), .ifindex = 7}, /*replace=*/true);
  EXPECT_EQ(Attrs(none.header(), sizeof(rtmsg)).count(RTA_METRICS), 0u);  // the link's MTU applies
}

TEST(RtnlRouteTest, GetRouteAsksForOneHostAndReadsTheMtuMetric) {
  NlRequest req(RTM_GETROUTE, 0);
  BuildGetRoute(req, *IpAddress::Parse("198.51.100.11"));
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(req.header()));
  EXPECT_EQ(rtm->rtm_family, AF_INET);
  EXPECT_EQ(rtm->rtm_dst_len, 32);
  auto attrs = Attrs(req.header(), sizeof(rtmsg));
  ASSERT_EQ(attrs.count(RTA_DST), 1u);
  EXPECT_EQ(mnl_attr_get_payload_len(attrs[RTA_DST]), 4u);
  // What the kernel answers for "ip route add default via 10.1.0.1 dev eth0 mtu 1400".
  NlRequest answer(RTM_NEWROUTE, 0);
  BuildNewRoute(answer, {.dst = IpPrefix::Default(Family::kV4), .gateway = *IpAddress::Parse("10.1.0.1"), .ifindex = 3},
                false);
  nlattr* metrics = mnl_attr_nest_start(answer.header(), RTA_METRICS);
  mnl_attr_put_u32(answer.header(), RTAX_MTU, 1400);
  mnl_attr_nest_end(answer.header(), metrics);
  auto r = ParseRoute(answer.header());
  WEFT_ASSERT_OK(r);
  EXPECT_EQ(r->mtu, 1400);
  EXPECT_EQ(r->ifindex, 3);
  auto plain = ParseRoute(req.header());  // no metrics: the link's MTU applies
  WEFT_ASSERT_OK(plain);
  EXPECT_EQ(plain->mtu, 0);
}

TEST(UplinkMtuTest, TunnelMtuLeavesRoomForWireGuardOverIpv6) {
  EXPECT_EQ(TunnelMtu(1500), 1420);  // wg-quick's default, and the lab's
  EXPECT_EQ(TunnelMtu(1460), 1380);  // GCP
  EXPECT_EQ(TunnelMtu(1492), 1412);  // PPPoE
  EXPECT_EQ(TunnelMtu(1280), 1200);
  EXPECT_EQ(TunnelMtu(9001), 8921);  // AWS jumbo frames
  EXPECT_EQ(TunnelMtu(600), kMinTunnelMtu);
}

TEST(RtnlNeighTest, PermanentEntry) {
  NlRequest req(RTM_NEWNEIGH, 0);
  BuildPermanentNeighbor(req, 9, *IpAddress::Parse("fe80::1"), MacAddress{{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}});
  auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(req.header()));
  EXPECT_EQ(nd->ndm_state, NUD_PERMANENT);
  EXPECT_EQ(nd->ndm_ifindex, 9);
  auto attrs = Attrs(req.header(), sizeof(ndmsg));
  EXPECT_EQ(mnl_attr_get_payload_len(attrs[NDA_DST]), 16u);
  EXPECT_EQ(mnl_attr_get_payload_len(attrs[NDA_LLADDR]), 6u);
}

}  // namespace
}  // namespace weft::net
