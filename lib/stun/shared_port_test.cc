#include "lib/stun/shared_port.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "lib/stun/stun_message.h"

namespace weft::stun {
namespace {

// The one's-complement sum over the pseudo-header and the datagram is all ones when the
// checksum is right (RFC 768; RFC 8200 8.1 for IPv6).
uint16_t Verify(const net::Endpoint& src, const net::Endpoint& dst, const std::vector<uint8_t>& d) {
  uint32_t sum = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  };
  add(src.ip.bytes(), static_cast<size_t>(src.ip.byte_length()));
  add(dst.ip.bytes(), static_cast<size_t>(dst.ip.byte_length()));
  sum += 17 + static_cast<uint32_t>(d.size());
  add(d.data(), d.size());
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

TEST(SharedPortTest, UdpChecksumsOverEitherFamilysPseudoHeader) {
  const std::vector<uint8_t> payload = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3};  // odd length
  for (const auto& [src, dst] : {std::pair{"10.1.0.2:51820", "198.51.100.11:3478"},
                                 std::pair{"[2001:db8:2::2]:51820", "[2001:db8::11]:3478"}}) {
    SCOPED_TRACE(src);
    const net::Endpoint s = *net::Endpoint::Parse(src), d = *net::Endpoint::Parse(dst);
    const std::vector<uint8_t> dgram = BuildUdpDatagram(s, d, payload);
    ASSERT_EQ(dgram.size(), 8 + payload.size());
    EXPECT_EQ(dgram[0] << 8 | dgram[1], 51820);
    EXPECT_EQ(dgram[2] << 8 | dgram[3], 3478);
    EXPECT_NE(dgram[6] << 8 | dgram[7], 0) << "0 would mean no checksum (forbidden over IPv6)";
    EXPECT_EQ(Verify(s, d, dgram), 0xffff);
  }
}

TEST(SharedPortTest, TheIpv6FilterReadsTheUdpHeaderAtOffsetZero) {
  const auto f = StunPortFilter6(51820);
  ASSERT_GE(f.size(), 4u);
  EXPECT_EQ(f[0].k, 2u);   // destination port
  EXPECT_EQ(f[1].k, 51820u);
  EXPECT_EQ(f[2].k, 12u);  // the magic cookie: UDP header (8) + 4
  EXPECT_EQ(f[3].k, kMagicCookie);
}

}  // namespace
}  // namespace weft::stun
