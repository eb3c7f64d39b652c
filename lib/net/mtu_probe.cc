#include "lib/net/mtu_probe.h"

#include <algorithm>

namespace weft::net {
namespace {

constexpr uint8_t kMagic[4] = {'W', 'F', 'T', 'M'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 10;

std::vector<uint8_t> Build(MtuProbe::Type type, uint16_t seq, uint16_t size, size_t length) {
  std::vector<uint8_t> m(std::max(length, kHeader), 0);
  std::copy(kMagic, kMagic + 4, m.begin());
  m[4] = kVersion;
  m[5] = static_cast<uint8_t>(type);
  m[6] = static_cast<uint8_t>(seq >> 8);
  m[7] = static_cast<uint8_t>(seq);
  m[8] = static_cast<uint8_t>(size >> 8);
  m[9] = static_cast<uint8_t>(size);
  return m;
}

}  // namespace

std::vector<uint8_t> BuildMtuProbe(uint16_t seq, uint16_t ip_size) {
  const uint16_t size = std::max<uint16_t>(ip_size, kMtuProbeMinSize);
  return Build(MtuProbe::Type::kProbe, seq, size, size - kMtuProbeHeaders);
}

std::vector<uint8_t> BuildMtuAck(uint16_t seq, uint16_t received_ip_size) {
  return Build(MtuProbe::Type::kAck, seq, received_ip_size, kHeader);
}

std::optional<MtuProbe> ParseMtuProbe(absl::Span<const uint8_t> p) {
  if (p.size() < kHeader || !std::equal(kMagic, kMagic + 4, p.begin()) || p[4] != kVersion) return std::nullopt;
  MtuProbe m;
  m.seq = static_cast<uint16_t>(p[6] << 8 | p[7]);
  m.size = static_cast<uint16_t>(p[8] << 8 | p[9]);
  switch (p[5]) {
    case static_cast<uint8_t>(MtuProbe::Type::kProbe):
      m.type = MtuProbe::Type::kProbe;
      if (m.size != p.size() + kMtuProbeHeaders) return std::nullopt;  // padding says what it claims
      return m;
    case static_cast<uint8_t>(MtuProbe::Type::kAck):
      m.type = MtuProbe::Type::kAck;
      if (p.size() != kHeader || m.size < kMtuProbeMinSize) return std::nullopt;
      return m;
    default:
      return std::nullopt;
  }
}

}  // namespace weft::net
