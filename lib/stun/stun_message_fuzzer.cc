// libFuzzer target: STUN/TURN parsing of untrusted datagrams must never crash, hang or
// read out of bounds, whatever arrives on the WireGuard port or a relay's socket.
#include <cstddef>
#include <cstdint>

#include "lib/stun/stun_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::Span<const uint8_t> pkt(data, size);
  (void)weft::stun::LooksLikeStun(pkt);
  (void)weft::stun::ParseBindingResponse(pkt);
  auto m = weft::stun::Message::Parse(pkt);
  if (!m.ok()) return 0;
  for (const auto& a : m->attributes()) {
    (void)m->GetXorAddress(a.type);
    (void)m->GetAddress(a.type);
    (void)m->GetU32(a.type);
  }
  (void)m->GetErrorCode();
  static const uint8_t kKey[] = {'k', 'e', 'y'};
  (void)m->CheckIntegrity(kKey);
  return 0;
}
