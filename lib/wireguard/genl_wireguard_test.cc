// The kernel backend's messages as bytes (this machine has no WireGuard module): what
// BuildSetDevice emits is read back with the GET parser, which sees the same attribute
// layout the kernel uses in its replies.
#include "lib/wireguard/genl_wireguard.h"

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>

#include "gtest/gtest.h"
#include "lib/net/nl_attr.h"
#include "lib/testing/status_matchers.h"

namespace weft::wireguard {
namespace {

Key K(int i) {
  Key k;
  k.bytes.fill(0);
  k.bytes[0] = static_cast<uint8_t>(i);
  k.bytes[1] = static_cast<uint8_t>(i >> 8);
  k.bytes[31] = 0x40;
  return k;
}

DeviceConfig Config(int peers, int ips_per_peer) {
  DeviceConfig c{.private_key = K(9999), .listen_port = 51820, .fwmark = 0x5746, .replace_peers = true};
  for (int i = 0; i < peers; ++i) {
    PeerConfig p{.public_key = K(i), .replace_allowed_ips = true};
    p.endpoint = net::Endpoint{net::IpAddress::V4(0xC6336400 + (i % 250)), static_cast<uint16_t>(40000 + i)};  // 198.51.100.x
    p.persistent_keepalive = 25;
    for (int j = 0; j < ips_per_peer; ++j) {
      p.allowed_ips.push_back({net::IpAddress::V4(0x0A000000 + (i << 8) + j), 32});
    }
    c.peers.push_back(p);
  }
  return c;
}

DeviceStatus ReadBack(const std::vector<std::unique_ptr<net::NlRequest>>& msgs) {
  DeviceStatus st;
  for (const auto& m : msgs) EXPECT_THAT(ParseGetDevicePart(m->header(), st), testing::IsOk());
  return st;
}

TEST(GenlWireguardTest, OneSmallDeviceFitsOneMessage) {
  auto msgs = BuildSetDevice(30, "weft0", Config(3, 2));
  ASSERT_EQ(msgs.size(), 1u);
  const nlmsghdr* nlh = msgs[0]->header();
  EXPECT_EQ(nlh->nlmsg_type, 30);
  auto* g = static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(g->cmd, WG_CMD_SET_DEVICE);
  uint32_t flags = 0;
  std::string ifname;
  net::ForEachAttr(nlh, sizeof(genlmsghdr), [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == WGDEVICE_A_FLAGS) flags = mnl_attr_get_u32(a);
    if (mnl_attr_get_type(a) == WGDEVICE_A_IFNAME) ifname = mnl_attr_get_str(a);
  });
  EXPECT_EQ(flags, WGDEVICE_F_REPLACE_PEERS);
  EXPECT_EQ(ifname, "weft0");
  DeviceStatus st = ReadBack(msgs);
  EXPECT_EQ(st.listen_port, 51820);
  EXPECT_EQ(st.fwmark, 0x5746u);
  EXPECT_EQ(st.private_key, K(9999));
  ASSERT_EQ(st.peers.size(), 3u);
  EXPECT_EQ(st.peers[2].endpoint->ToString(), "198.51.100.2:40002");
  EXPECT_EQ(st.peers[2].persistent_keepalive, 25);
  EXPECT_EQ(st.peers[2].allowed_ips.size(), 2u);
}

TEST(GenlWireguardTest, ALargeMeshIsSplitAcrossMessagesWithoutChangingIt) {
  const DeviceConfig c = Config(1000, 3);
  auto msgs = BuildSetDevice(30, "weft0", c, 4096);
  EXPECT_GT(msgs.size(), 10u);
  int with_replace = 0;
  for (const auto& m : msgs) {
    EXPECT_LE(m->size(), 4096u);
    net::ForEachAttr(m->header(), sizeof(genlmsghdr), [&](const nlattr* a) {
      if (mnl_attr_get_type(a) == WGDEVICE_A_FLAGS) ++with_replace;
    });
  }
  EXPECT_EQ(with_replace, 1) << "only the first message may replace the peer list";
  DeviceStatus st = ReadBack(msgs);
  ASSERT_EQ(st.peers.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(st.peers[i].public_key, K(i));
    ASSERT_EQ(st.peers[i].allowed_ips.size(), 3u) << i;
    EXPECT_EQ(st.peers[i].allowed_ips[2], c.peers[i].allowed_ips[2]);
  }
}

TEST(GenlWireguardTest, OnePeerWithMoreAllowedIpsThanAMessageHoldsContinues) {
  const DeviceConfig c = Config(1, 400);
  auto msgs = BuildSetDevice(30, "weft0", c, 2048);
  EXPECT_GT(msgs.size(), 2u);
  // Only the peer's first part carries REPLACE_ALLOWEDIPS.
  int replace = 0;
  for (const auto& m : msgs) {
    net::ForEachAttr(m->header(), sizeof(genlmsghdr), [&](const nlattr* a) {
      if (mnl_attr_get_type(a) != WGDEVICE_A_PEERS) return;
      net::ForEachNested(a, [&](const nlattr* peer) {
        net::ForEachNested(peer, [&](const nlattr* pa) {
          if (mnl_attr_get_type(pa) == WGPEER_A_FLAGS && (mnl_attr_get_u32(pa) & WGPEER_F_REPLACE_ALLOWEDIPS)) ++replace;
        });
      });
    });
  }
  EXPECT_EQ(replace, 1);
  DeviceStatus st = ReadBack(msgs);
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].allowed_ips.size(), 400u);
}

TEST(GenlWireguardTest, RemovalCarriesOnlyKeyAndFlag) {
  DeviceConfig c;
  c.peers.push_back(PeerConfig{.public_key = K(1), .remove = true});
  auto msgs = BuildSetDevice(30, "weft0", c);
  DeviceStatus st = ReadBack(msgs);
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_FALSE(st.peers[0].endpoint.has_value());
}

TEST(GenlWireguardTest, MalformedRepliesAreErrors) {
  net::NlRequest bad(30, 0);
  bad.PutExtraHeader<genlmsghdr>();
  nlattr* peers = mnl_attr_nest_start(bad.header(), WGDEVICE_A_PEERS);
  nlattr* peer = mnl_attr_nest_start(bad.header(), 0);
  mnl_attr_put(bad.header(), WGPEER_A_PUBLIC_KEY, 5, "short");
  mnl_attr_nest_end(bad.header(), peer);
  mnl_attr_nest_end(bad.header(), peers);
  DeviceStatus st;
  EXPECT_FALSE(ParseGetDevicePart(bad.header(), st).ok());
}

}  // namespace
}  // namespace weft::wireguard
