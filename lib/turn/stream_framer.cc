#include "lib/turn/stream_framer.h"

#include "lib/turn/channel_data.h"

namespace weft::turn {
namespace {

constexpr uint32_t kMagicCookie = 0x2112A442;

}  // namespace

size_t StreamPadding(absl::Span<const uint8_t> frame) {
  return IsChannelData(frame) ? (4 - frame.size() % 4) % 4 : 0;
}

void AppendStreamFrame(absl::Span<const uint8_t> frame, std::vector<uint8_t>& out) {
  out.insert(out.end(), frame.begin(), frame.end());
  out.insert(out.end(), StreamPadding(frame), 0);
}

void StreamFramer::Append(absl::Span<const uint8_t> bytes) {
  if (at_ > 0) {  // drop what was returned before growing
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(at_));
    at_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

absl::StatusOr<absl::Span<const uint8_t>> StreamFramer::Next() {
  const size_t have = buf_.size() - at_;
  if (have < 4) return absl::Span<const uint8_t>();
  const uint8_t* p = buf_.data() + at_;
  const size_t length = size_t{p[2]} << 8 | p[3];
  size_t frame, step;
  if ((p[0] & 0xC0) == 0x40) {  // ChannelData: channel, length, data, padding
    frame = 4 + length;
    step = frame + (4 - frame % 4) % 4;
  } else if ((p[0] & 0xC0) == 0) {  // STUN: 20-byte header, attributes (a multiple of 4)
    if (length % 4 != 0) return absl::InvalidArgumentError("STUN length not a multiple of 4");
    if (have >= 8 && (uint32_t{p[4]} << 24 | uint32_t{p[5]} << 16 | uint32_t{p[6]} << 8 | p[7]) != kMagicCookie) {
      return absl::InvalidArgumentError("no STUN magic cookie");
    }
    frame = step = 20 + length;
  } else {
    return absl::InvalidArgumentError("neither STUN nor ChannelData");
  }
  if (have < step) return absl::Span<const uint8_t>();
  at_ += step;
  if (at_ == buf_.size()) {  // all consumed: the next Append starts at the front
    buf_.clear();
    at_ = 0;
    // The span stays valid: clear() keeps the storage and nothing is written until Append.
  }
  return absl::Span<const uint8_t>(p, frame);
}

}  // namespace weft::turn
