// TURN over a byte stream (TCP to the relay, RFC 8656 section 12.5 and RFC 8489 section
// 6.2.2): STUN messages and ChannelData frames back to back, ChannelData padded to a
// multiple of 4. One framer for both ends: weft-relay's TCP clients and the agent's
// TURN-over-TCP client. Pure; bounded (at most one frame and one read are buffered).
#ifndef WEFT_LIB_TURN_STREAM_FRAMER_H_
#define WEFT_LIB_TURN_STREAM_FRAMER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace weft::turn {

// The largest frame: a STUN message's header and 65535 bytes of attributes.
inline constexpr size_t kMaxStreamFrame = 20 + 65535;

// The zero bytes that follow `frame` on a stream (ChannelData: to a multiple of 4).
size_t StreamPadding(absl::Span<const uint8_t> frame);

// Appends `frame` and its padding to `out`.
void AppendStreamFrame(absl::Span<const uint8_t> frame, std::vector<uint8_t>& out);

class StreamFramer {
 public:
  // Bytes read from the stream.
  void Append(absl::Span<const uint8_t> bytes);
  // The next whole frame (without padding; valid until the next Append), an empty span
  // when more bytes are needed, or InvalidArgument when the stream holds neither STUN
  // nor ChannelData (it cannot be resynchronized: close it).
  absl::StatusOr<absl::Span<const uint8_t>> Next();
  // Bytes of a frame begun but not whole.
  size_t partial() const { return buf_.size() - at_; }

 private:
  std::vector<uint8_t> buf_;
  size_t at_ = 0;  // start of the first frame not yet returned
};

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_STREAM_FRAMER_H_
