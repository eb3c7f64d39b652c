#include "lib/net/icmp_echo.h"

namespace weft::net {
namespace {

constexpr uint8_t kEchoReply = 0;
constexpr uint8_t kEchoRequest = 8;
constexpr uint8_t kEchoRequest6 = 128;
constexpr uint8_t kEchoReply6 = 129;

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

}  // namespace

uint16_t InternetChecksum(absl::Span<const uint8_t> data) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += Get16(&data[i]);
  if (i < data.size()) sum += static_cast<uint32_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> BuildEchoRequest(uint16_t id, uint16_t seq, size_t payload_size) {
  std::vector<uint8_t> m(8 + payload_size);
  m[0] = kEchoRequest;
  m[4] = static_cast<uint8_t>(id >> 8);
  m[5] = static_cast<uint8_t>(id);
  m[6] = static_cast<uint8_t>(seq >> 8);
  m[7] = static_cast<uint8_t>(seq);
  for (size_t i = 0; i < payload_size; ++i) m[8 + i] = static_cast<uint8_t>('w' + i % 4);
  const uint16_t c = InternetChecksum(m);
  m[2] = static_cast<uint8_t>(c >> 8);
  m[3] = static_cast<uint8_t>(c);
  return m;
}

std::vector<uint8_t> BuildEchoRequest6(uint16_t id, uint16_t seq, size_t payload_size) {
  std::vector<uint8_t> m = BuildEchoRequest(id, seq, payload_size);
  m[0] = kEchoRequest6;
  m[2] = m[3] = 0;
  return m;
}

std::optional<EchoReply> ParseEchoReply6(absl::Span<const uint8_t> p, const IpAddress& from) {
  if (p.size() < 8 || p[0] != kEchoReply6 || p[1] != 0 || from.is_v4()) return std::nullopt;
  return EchoReply{from, Get16(&p[4]), Get16(&p[6]), p.size() - 8};
}

std::optional<EchoReply> ParseEchoReply(absl::Span<const uint8_t> p) {
  if (p.size() < 20 || p[0] >> 4 != 4) return std::nullopt;
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  const size_t total = Get16(&p[2]);
  if (ihl < 20 || total < ihl + 8 || total > p.size() || p[9] != 1 /* ICMP */) return std::nullopt;
  if ((Get16(&p[6]) & 0x3fff) != 0) return std::nullopt;  // a fragment
  absl::Span<const uint8_t> icmp = p.subspan(ihl, total - ihl);
  if (icmp[0] != kEchoReply || icmp[1] != 0 || InternetChecksum(icmp) != 0) return std::nullopt;
  return EchoReply{IpAddress::FromBytes(Family::kV4, &p[12]), Get16(&icmp[4]), Get16(&icmp[6]), icmp.size() - 8};
}

}  // namespace weft::net
