#include "lib/stun/stun_message.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::stun {
namespace {

using ::weft::testing::StatusIs;

std::vector<uint8_t> Hex(absl::string_view h) {
  std::string b = absl::HexStringToBytes(h);
  return {b.begin(), b.end()};
}

// Captured from coturn 4.6.1 (Debian 12, `turnserver -n --no-auth -f`) on loopback:
// a Binding request with FINGERPRINT from 127.0.0.1:40001, transaction ID 01..0c.
constexpr absl::string_view kCoturnBindingResponse =
    "010100442112a4420102030405060708090a0b0c002000080001bd535e12a4430001000800019c417f000001"
    "802b0008000187dc7f00000180220014436f7475726e2d342e362e312027476f7273742780280004bb1a272f";
// The same server's answer to an Allocate (REQUESTED-TRANSPORT UDP), transaction 15..20.
constexpr absl::string_view kCoturnAllocateResponse =
    "010300402112a44215161718191a1b1c1d1e1f20001600080001f9ac5e12a443002000080001bd535e12a443"
    "000d00040000025880220014436f7475726e2d342e362e312027476f7273742780280004abaab2aa";

TxId Tx(uint8_t first) {
  TxId t;
  for (int i = 0; i < 12; ++i) t[i] = static_cast<uint8_t>(first + i);
  return t;
}

SocketAddress Addr(const char* ip, uint16_t port) { return {*net::IpAddress::Parse(ip), port}; }

TEST(StunMessageTest, ParsesCoturnBindingResponse) {
  auto pkt = Hex(kCoturnBindingResponse);
  ASSERT_TRUE(LooksLikeStun(pkt));
  auto r = ParseBindingResponse(pkt);
  WEFT_ASSERT_OK(r);
  EXPECT_EQ(r->tx_id, Tx(1));
  EXPECT_EQ(r->mapped, Addr("127.0.0.1", 40001));
  EXPECT_EQ(r->response_origin, Addr("127.0.0.1", 34780));
  EXPECT_FALSE(r->other_address.has_value());
  EXPECT_EQ(r->software, "Coturn-4.6.1 'Gorst'");
  auto m = Message::Parse(pkt);
  EXPECT_TRUE(m->has_fingerprint());
  EXPECT_EQ(m->GetAddress(kMappedAddress)->port, 40001);
}

TEST(StunMessageTest, ParsesCoturnAllocateResponse) {
  auto pkt = Hex(kCoturnAllocateResponse);
  auto m = Message::Parse(pkt);
  WEFT_ASSERT_OK(m);
  EXPECT_EQ(m->method(), kAllocate);
  EXPECT_EQ(m->message_class(), Class::kSuccess);
  EXPECT_EQ(*m->GetXorAddress(kXorRelayedAddress), Addr("127.0.0.1", 55486));
  EXPECT_EQ(*m->GetXorAddress(kXorMappedAddress), Addr("127.0.0.1", 40001));
  EXPECT_EQ(*m->GetU32(kLifetime), 600u);
}

TEST(StunMessageTest, BindingRequestMatchesWhatCoturnAnswered) {
  // Byte for byte the request the capture above answered (built there independently,
  // with Python's zlib.crc32 for the FINGERPRINT).
  EXPECT_EQ(BuildBindingRequest(Tx(1)), Hex("000100082112a4420102030405060708090a0b0c802800045b20f9cc"));
  const auto request = BuildBindingRequest(Tx(1));
  auto m = Message::Parse(request);
  WEFT_ASSERT_OK(m);
  EXPECT_EQ(m->method(), kBinding);
  EXPECT_EQ(m->message_class(), Class::kRequest);
  EXPECT_TRUE(m->has_fingerprint());
}

TEST(StunMessageTest, XorAddressesRoundTripBothFamilies) {
  for (const SocketAddress& a : {Addr("198.51.100.7", 51820), Addr("2001:db8::1234", 3478)}) {
    SCOPED_TRACE(a.ToString());
    auto bytes = Builder(kBinding, Class::kSuccess, Tx(9))
                     .AddXorAddress(kXorMappedAddress, a)
                     .AddAddress(kOtherAddress, Addr("203.0.113.9", 3479))
                     .Finish();
    auto r = ParseBindingResponse(bytes);
    WEFT_ASSERT_OK(r);
    EXPECT_EQ(r->mapped, a);
    EXPECT_EQ(r->other_address, Addr("203.0.113.9", 3479));
  }
}

TEST(StunMessageTest, IntegrityShortAndLongTermSha1AndSha256) {
  const std::string pw = "VOkJxbRl1RmTxUk/WvJxBt";
  std::vector<uint8_t> short_key(pw.begin(), pw.end());
  std::vector<uint8_t> long_key = LongTermKey("user", "weft.dev", "secret");
  ASSERT_EQ(long_key.size(), 16u);
  for (bool sha256 : {false, true}) {
    for (const auto& key : {short_key, long_key}) {
      auto bytes = Builder(kAllocate, Class::kRequest, Tx(3))
                       .AddString(kUsername, "user")
                       .AddU32(kRequestedTransport, 17u << 24)
                       .AddIntegrity(key, sha256)
                       .Finish();
      auto m = Message::Parse(bytes);
      WEFT_ASSERT_OK(m);
      WEFT_EXPECT_OK(m->CheckIntegrity(key));
      std::vector<uint8_t> wrong = key;
      wrong[0] ^= 1;
      EXPECT_THAT(m->CheckIntegrity(wrong), StatusIs(absl::StatusCode::kPermissionDenied));
    }
  }
  const auto plain_bytes = BuildBindingRequest(Tx(1));
  auto plain = Message::Parse(plain_bytes);
  EXPECT_THAT(plain->CheckIntegrity(short_key), StatusIs(absl::StatusCode::kNotFound));
}

TEST(StunMessageTest, ErrorCode) {
  const auto bytes = Builder(kAllocate, Class::kError, Tx(4)).AddErrorCode(401, "Unauthorized").Finish();
  auto m = Message::Parse(bytes);
  auto e = m->GetErrorCode();
  WEFT_ASSERT_OK(e);
  EXPECT_EQ(e->code, 401);
  EXPECT_EQ(e->reason, "Unauthorized");
}

TEST(StunMessageTest, MalformedInputIsRefused) {
  const auto good = Hex(kCoturnBindingResponse);
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}});
  cases.push_back({"short_header", {good.begin(), good.begin() + 19}});
  auto c = good;
  c[4] ^= 0xff;
  cases.push_back({"wrong_cookie", c});
  c = good;
  c[3] += 4;
  cases.push_back({"length_too_long", c});
  cases.push_back({"truncated_attributes", {good.begin(), good.end() - 4}});
  c = good;
  c[good.size() - 1] ^= 1;
  cases.push_back({"bad_fingerprint", c});
  c = good;
  c[0] |= 0x80;
  cases.push_back({"not_stun_bits", c});
  c = good;
  c[22] = 0xff;  // first attribute's length overruns
  cases.push_back({"attribute_overrun", c});
  // An attribute after FINGERPRINT.
  c = good;
  for (uint8_t b : {0x80, 0x22, 0x00, 0x00}) c.push_back(b);
  c[3] += 4;
  cases.push_back({"after_fingerprint", c});
  // An attribute after MESSAGE-INTEGRITY.
  auto mi = Builder(kBinding, Class::kRequest, Tx(1)).AddIntegrity(Hex("00")).AddString(kSoftware, "x").Finish(false);
  cases.push_back({"after_integrity", mi});
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    EXPECT_FALSE(Message::Parse(k.bytes).ok());
  }
}

TEST(StunMessageTest, MalformedAttributesAreRefusedByTheirReaders) {
  auto bad_family = Builder(kBinding, Class::kSuccess, Tx(1)).AddRaw(kXorMappedAddress, Hex("0003abcd7f000001")).Finish();
  EXPECT_THAT(Message::Parse(bad_family)->GetXorAddress(kXorMappedAddress), StatusIs(absl::StatusCode::kInvalidArgument));
  auto short_v6 = Builder(kBinding, Class::kSuccess, Tx(1)).AddRaw(kXorMappedAddress, Hex("0002abcd7f000001")).Finish();
  EXPECT_FALSE(ParseBindingResponse(short_v6).ok());
  auto bad_error = Builder(kBinding, Class::kError, Tx(1)).AddRaw(kErrorCode, Hex("00000963")).Finish();
  EXPECT_THAT(Message::Parse(bad_error)->GetErrorCode(), StatusIs(absl::StatusCode::kInvalidArgument));
  auto request = BuildBindingRequest(Tx(1));
  EXPECT_FALSE(ParseBindingResponse(request).ok()) << "a request is not a response";
}

TEST(StunMessageTest, Crc32KnownValue) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xCBF43926u);
}

}  // namespace
}  // namespace weft::stun
