// libFuzzer: a TURN-over-TCP byte stream, cut into reads of fuzzed sizes. Every frame
// returned must be a whole STUN message or ChannelData within the stream, and the
// framer must never hold more than a frame and a read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "lib/turn/stream_framer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::turn::StreamFramer f;
  size_t at = 0;
  while (at < size) {
    const size_t chunk = std::min<size_t>(size - at, 1 + data[at] % 64);
    f.Append(absl::Span<const uint8_t>(data + at, chunk));
    at += chunk;
    for (;;) {
      auto frame = f.Next();
      if (!frame.ok()) return 0;  // the stream is lost: the caller closes it
      if (frame->empty()) break;
      if (frame->size() < 4 || frame->size() > weft::turn::kMaxStreamFrame) abort();
      const size_t length = size_t{(*frame)[2]} << 8 | (*frame)[3];
      if (((*frame)[0] & 0xC0) == 0x40 ? frame->size() != 4 + length : frame->size() != 20 + length) abort();
    }
    if (f.partial() > weft::turn::kMaxStreamFrame + 64) abort();
  }
  return 0;
}
