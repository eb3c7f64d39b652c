#include "lib/turn/stream_framer.h"

#include <gtest/gtest.h>

#include "lib/stun/stun_message.h"

namespace weft::turn {
namespace {

std::vector<uint8_t> Frames(StreamFramer& f) {
  std::vector<uint8_t> lengths;
  for (;;) {
    auto n = f.Next();
    EXPECT_TRUE(n.ok());
    if (!n.ok() || n->empty()) return lengths;
    lengths.push_back(static_cast<uint8_t>(n->size()));
  }
}

TEST(StreamFramerTest, StunAndPaddedChannelDataByteByByte) {
  stun::TxId tx{};
  std::vector<uint8_t> stream;
  const std::vector<uint8_t> binding = stun::BuildBindingRequest(tx);
  const uint8_t b = static_cast<uint8_t>(binding.size());
  AppendStreamFrame(binding, stream);
  const std::vector<uint8_t> cd = {0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c'};  // 7 bytes, padded to 8
  AppendStreamFrame(cd, stream);
  AppendStreamFrame(binding, stream);
  ASSERT_EQ(stream.size(), 2u * b + 8);
  StreamFramer f;
  std::vector<uint8_t> seen;
  for (uint8_t byte : stream) {
    f.Append(absl::Span<const uint8_t>(&byte, 1));
    for (uint8_t n : Frames(f)) seen.push_back(n);
  }
  EXPECT_EQ(seen, (std::vector<uint8_t>{b, 7, b})) << "frames without their padding";
  EXPECT_EQ(f.partial(), 0u);
  StreamFramer whole;
  whole.Append(stream);
  EXPECT_EQ(Frames(whole), (std::vector<uint8_t>{b, 7, b}));
}

TEST(StreamFramerTest, APartialFrameWaitsAndIsCounted) {
  StreamFramer f;
  const std::vector<uint8_t> head = {0x40, 0x01, 0x01, 0x00, 1, 2};  // 256 bytes announced
  f.Append(head);
  auto n = f.Next();
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->empty());
  EXPECT_EQ(f.partial(), 6u);
}

TEST(StreamFramerTest, GarbageIsAnErrorNotAResync) {
  for (const std::vector<uint8_t>& bad : {std::vector<uint8_t>{0x80, 0, 0, 0}, std::vector<uint8_t>{0xC0, 1, 2, 3},
                                          std::vector<uint8_t>{0x00, 0x01, 0x00, 0x02, 0x21, 0x12, 0xA4, 0x42},
                                          std::vector<uint8_t>{0x00, 0x01, 0x00, 0x00, 'G', 'E', 'T', ' '}}) {
    StreamFramer f;
    f.Append(bad);
    EXPECT_FALSE(f.Next().ok());
  }
}

}  // namespace
}  // namespace weft::turn
