#include "lib/net/fragment_band.h"

#include <netinet/in.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"

namespace weft::net {
namespace {

// A WireGuard transport message carrying `inner` bytes (padded to 16), raw or in ChannelData.
std::vector<uint8_t> Message(int inner, bool channel_data = false) {
  const int padded = (inner + 15) / 16 * 16;
  std::vector<uint8_t> m(padded + kWireGuardOverhead + (channel_data ? 4 : 0), 0);
  m[0] = channel_data ? 0x40 : 4;
  return m;
}

TEST(FragmentBandTest, InnerSizesAboveWhatA1280PathCarriesUpToIpv6sMinimum) {
  EXPECT_FALSE(InnerInFragmentBand(1216));
  EXPECT_TRUE(InnerInFragmentBand(1217));
  EXPECT_TRUE(InnerInFragmentBand(1280));
  EXPECT_FALSE(InnerInFragmentBand(1281));
}

TEST(FragmentBandTest, WireGuardMessagesOfTheBandRawAndInChannelData) {
  for (bool cd : {false, true}) {
    SCOPED_TRACE(cd ? "ChannelData" : "raw");
    EXPECT_FALSE(InFragmentBand(Message(1216, cd)));  // the search's last probe below the band
    EXPECT_TRUE(InFragmentBand(Message(1217, cd)));
    EXPECT_TRUE(InFragmentBand(Message(1280, cd)));
    EXPECT_FALSE(InFragmentBand(Message(1281, cd)));
    EXPECT_FALSE(InFragmentBand(Message(1420, cd)));
    EXPECT_FALSE(InFragmentBand(Message(64, cd)));
  }
  // Not WireGuard data: a handshake initiation padded to the size, STUN, nothing.
  std::vector<uint8_t> other = Message(1240);
  other[0] = 1;
  EXPECT_FALSE(InFragmentBand(other));
  other[0] = 0;  // STUN
  EXPECT_FALSE(InFragmentBand(other));
  EXPECT_FALSE(InFragmentBand({}));
  EXPECT_FALSE(InFragmentBand(std::vector<uint8_t>{0x40, 0}));
}

TEST(FragmentBandTest, SendsEveryDatagramAndLeavesTheSocketWantingPathMtuDiscovery) {
  const int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(rx, 0);
  ASSERT_GE(tx, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(connect(tx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  // Out of the band, in it, in it, out: three runs.
  std::vector<std::vector<uint8_t>> d = {Message(1420), Message(1232), Message(1280, true), Message(100)};
  mmsghdr m[4];
  iovec v[4];
  for (int k = 0; k < 4; ++k) {
    v[k] = {d[k].data(), d[k].size()};
    m[k] = {};
    m[k].msg_hdr.msg_iov = &v[k];
    m[k].msg_hdr.msg_iovlen = 1;
  }
  EXPECT_EQ(SendmmsgWithFragmentBand(tx, m, 4, MSG_DONTWAIT), 4);
  int mode = -1;
  socklen_t ml = sizeof(mode);
  ASSERT_EQ(getsockopt(tx, IPPROTO_IP, IP_MTU_DISCOVER, &mode, &ml), 0);
  EXPECT_EQ(mode, IP_PMTUDISC_WANT);
  std::vector<uint8_t> buf(2000);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(recv(rx, buf.data(), buf.size(), MSG_DONTWAIT), static_cast<ssize_t>(d[k].size())) << k;
  }
  close(rx);
  close(tx);
}

}  // namespace
}  // namespace weft::net
