// ChannelData (RFC 8656 section 12.4): a 4-byte header (channel number, length) and the
// data; what relayed packets travel in between a TURN client and its server. One codec
// for weft-relay, the agent's client and the stream framer; header-only (the hot paths
// read and write in place).
#ifndef WEFT_LIB_TURN_CHANNEL_DATA_H_
#define WEFT_LIB_TURN_CHANNEL_DATA_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/types/span.h"

namespace weft::turn {

inline constexpr size_t kChannelDataHeader = 4;

// The first two bits 01: ChannelData, not STUN (00).
inline bool IsChannelData(absl::Span<const uint8_t> p) { return !p.empty() && (p[0] & 0xC0) == 0x40; }

struct ChannelData {
  uint16_t channel = 0;
  absl::Span<const uint8_t> data;  // what the header announces (padding after it ignored)
};

// nullopt when `p` is not ChannelData or its length overruns `p`.
inline std::optional<ChannelData> ParseChannelData(absl::Span<const uint8_t> p) {
  if (p.size() < kChannelDataHeader || !IsChannelData(p)) return std::nullopt;
  const size_t len = size_t{p[2]} << 8 | p[3];
  if (kChannelDataHeader + len > p.size()) return std::nullopt;
  return ChannelData{static_cast<uint16_t>(p[0] << 8 | p[1]), p.subspan(kChannelDataHeader, len)};
}

// The header for `len` (< 65536) bytes on `channel`, at `p[0..3]`.
inline void WriteChannelDataHeader(uint8_t* p, uint16_t channel, size_t len) {
  p[0] = static_cast<uint8_t>(channel >> 8);
  p[1] = static_cast<uint8_t>(channel);
  p[2] = static_cast<uint8_t>(len >> 8);
  p[3] = static_cast<uint8_t>(len);
}

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_CHANNEL_DATA_H_
