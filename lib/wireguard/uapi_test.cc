#include "lib/wireguard/uapi.h"

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::wireguard {
namespace {

using ::weft::testing::StatusIs;

Key K(uint8_t fill) {
  Key k;
  k.bytes.fill(fill);
  return k;
}

TEST(KeyTest, PublicKeyOfTheRfc7748TestVector) {
  // RFC 7748 section 6.1, Alice.
  auto priv = Key::FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  WEFT_ASSERT_OK(priv);
  auto pub = Key::PublicFrom(*priv);
  WEFT_ASSERT_OK(pub);
  EXPECT_EQ(pub->ToHex(), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  auto round = Key::FromBase64(pub->ToBase64());
  WEFT_ASSERT_OK(round);
  EXPECT_EQ(*round, *pub);
}

TEST(KeyTest, GeneratedKeysAreClampedAndDistinct) {
  auto a = Key::GeneratePrivate();
  auto b = Key::GeneratePrivate();
  WEFT_ASSERT_OK(a);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->bytes[0] & 7, 0);
  EXPECT_EQ(a->bytes[31] & 0xc0, 0x40);
}

TEST(KeyTest, RejectsBadEncodings) {
  EXPECT_FALSE(Key::FromBase64("short").ok());
  EXPECT_FALSE(Key::FromHex(std::string(63, 'a')).ok());
  EXPECT_FALSE(Key::FromHex(std::string(64, 'g')).ok());
}

TEST(UapiTest, EncodesSet) {
  DeviceConfig c;
  c.private_key = K(1);
  c.listen_port = 51820;
  c.replace_peers = true;
  PeerConfig p{.public_key = K(2)};
  p.endpoint = *net::Endpoint::Parse("[2001:db8::1]:51820");
  p.persistent_keepalive = 25;
  p.replace_allowed_ips = true;
  p.allowed_ips = {*net::IpPrefix::Parse("10.244.2.0/24"), *net::IpPrefix::Parse("fd00:10:244:2::/64")};
  c.peers.push_back(p);
  c.peers.push_back(PeerConfig{.public_key = K(3), .remove = true});
  EXPECT_EQ(EncodeUapiSet(c),
            "set=1\nprivate_key=" + K(1).ToHex() + "\nlisten_port=51820\nreplace_peers=true\n"
            "public_key=" + K(2).ToHex() + "\nendpoint=[2001:db8::1]:51820\n"
            "persistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
            "allowed_ip=10.244.2.0/24\nallowed_ip=fd00:10:244:2::/64\n"
            "public_key=" + K(3).ToHex() + "\nremove=true\n\n");
}

TEST(UapiTest, ParsesGet) {
  const std::string reply =
      "private_key=" + K(5).ToHex() + "\nlisten_port=51820\nfwmark=0\n"
      "public_key=" + K(2).ToHex() + "\nendpoint=192.0.2.7:4321\nlast_handshake_time_sec=1700000000\n"
      "last_handshake_time_nsec=500\ntx_bytes=100\nrx_bytes=200\npersistent_keepalive_interval=25\n"
      "allowed_ip=10.244.2.0/24\nprotocol_version=1\n"
      "public_key=" + K(3).ToHex() + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
      "errno=0\n\n";
  auto d = ParseUapiGet(reply);
  WEFT_ASSERT_OK(d);
  EXPECT_EQ(d->listen_port, 51820);
  EXPECT_EQ(d->public_key, *Key::PublicFrom(K(5)));
  ASSERT_EQ(d->peers.size(), 2u);
  EXPECT_EQ(d->peers[0].endpoint->ToString(), "192.0.2.7:4321");
  EXPECT_EQ(d->peers[0].rx_bytes, 200u);
  EXPECT_EQ(d->peers[0].allowed_ips.size(), 1u);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(d->peers[0].last_handshake), 1700000000);
  EXPECT_EQ(d->peers[1].last_handshake, std::chrono::system_clock::time_point{});
}

TEST(UapiTest, ErrorsAndMalformedReplies) {
  EXPECT_THAT(ParseUapiGet("errno=13\n\n"), StatusIs(absl::StatusCode::kUnknown));
  EXPECT_THAT(ParseUapiGet("listen_port=1\n\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUapiGet("listen_port=99999\nerrno=0\n\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUapiGet("public_key=zz\nerrno=0\n\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUapiGet("garbage\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  WEFT_EXPECT_OK(ParseUapiSetReply("errno=0\n\n"));
  EXPECT_FALSE(ParseUapiSetReply("errno=22\n\n").ok());
  EXPECT_FALSE(ParseUapiSetReply("\n").ok());
}

}  // namespace
}  // namespace weft::wireguard
