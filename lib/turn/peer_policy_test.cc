#include "lib/turn/peer_policy.h"

#include <gtest/gtest.h>

namespace weft::turn {
namespace {

net::Endpoint Ep(const std::string& s) { return *net::Endpoint::Parse(s); }
net::IpAddress Ip(const std::string& s) { return *net::IpAddress::Parse(s); }

PeerPolicy Default() {
  PeerPolicyOptions o;
  o.relay_ips = {Ip("203.0.113.9"), Ip("198.51.100.200")};  // this relay, another
  o.own = {Ep("0.0.0.0:3478"), Ep("0.0.0.0:9477")};
  return PeerPolicy(o);
}

TEST(PeerPolicyTest, OnlyTheRelaysRelayedPortsByDefault) {
  const PeerPolicy p = Default();
  EXPECT_TRUE(p.Check(Ep("203.0.113.9:50000")).ok());
  EXPECT_TRUE(p.Check(Ep("198.51.100.200:65535")).ok());
  EXPECT_TRUE(p.Check(Ep("198.51.100.200:0")).ok()) << "a permission is per IP";
  EXPECT_EQ(p.Check(Ep("192.0.2.10:51820")).message(), "Forbidden: 192.0.2.10:51820 is not a relay's address");
  EXPECT_EQ(p.Check(Ep("203.0.113.9:22")).message(), "Forbidden: 203.0.113.9:22 is not a relayed port");
}

TEST(PeerPolicyTest, NeverLoopbackUnspecifiedMulticastBroadcastLinkLocalOrOwnPorts) {
  PeerPolicyOptions o;
  o.relay_ips = {Ip("203.0.113.9")};
  o.relay_port_min = 1;  // even with every port and every address allowed
  o.allowed = {*net::IpPrefix::Parse("0.0.0.0/0")};
  o.own = {Ep("0.0.0.0:3478"), Ep("203.0.113.9:9477")};
  const PeerPolicy p(o);
  for (const char* peer : {"127.0.0.1:53", "127.9.9.9:50000", "0.0.0.0:50000", "0.1.2.3:50000", "224.0.0.1:50000",
                           "239.255.255.250:1900", "255.255.255.255:50000", "169.254.169.254:80", "240.0.0.1:50000",
                           "203.0.113.9:3478", "203.0.113.9:9477"}) {
    absl::Status s = p.Check(Ep(peer));
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << peer;
  }
  EXPECT_TRUE(p.Check(Ep("192.0.2.10:53")).ok()) << "the admin opened everything else";
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(Ep("[::1]:50000"))));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(Ep("[::ffff:127.0.0.1]:50000"))));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(Ep("[ff02::1]:50000"))));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(Ep("[fe80::1]:50000"))));
}

TEST(PeerPolicyTest, DeniedWinsOverAllowedAndTheRelays) {
  PeerPolicyOptions o;
  o.relay_ips = {Ip("203.0.113.9")};
  o.allowed = {*net::IpPrefix::Parse("192.0.2.0/24")};
  o.denied = {*net::IpPrefix::Parse("192.0.2.128/25"), *net::IpPrefix::Parse("203.0.113.9/32")};
  const PeerPolicy p(o);
  EXPECT_TRUE(p.Check(Ep("192.0.2.1:7")).ok());
  EXPECT_EQ(p.Check(Ep("192.0.2.200:7")).message(), "Forbidden: 192.0.2.200:7 is denied");
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(Ep("203.0.113.9:50000"))));
}

TEST(PeerPolicyTest, LoopbackOnlyWhenATestSaysSo) {
  PeerPolicyOptions o;
  o.allowed = {*net::IpPrefix::Parse("127.0.0.1/32")};
  EXPECT_FALSE(PeerPolicy(o).Check(Ep("127.0.0.1:4000")).ok());
  o.allow_loopback = true;
  EXPECT_TRUE(PeerPolicy(o).Check(Ep("127.0.0.1:4000")).ok());
  EXPECT_FALSE(PeerPolicy(o).Check(Ep("127.0.0.2:4000")).ok()) << "allowed loopback, not every loopback";
}

}  // namespace
}  // namespace weft::turn
