// libFuzzer: what a relay (or anyone spoofing it) can answer the agent's TURN client.
// The script answers the client's own requests (their transaction IDs) with fuzzed
// classes, error codes and attributes, or sends raw bytes; time moves. The client must
// not crash, must keep its state consistent and must never hand out a channel twice.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <vector>

#include "lib/turn/turn_client.h"

namespace stun = weft::stun;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::turn::TurnClient c({.username = "1800003600:node-a", .password = "pw", .lifetime_s = 4, .tx_seed = 9});
  int64_t now = 1800000000000;
  size_t at = 0;
  auto byte = [&]() -> uint8_t { return at < size ? data[at++] : 0; };
  std::vector<stun::TxId> asked;
  std::set<uint16_t> channels;
  for (int step = 0; step < 128 && at < size; ++step) {
    const uint8_t op = byte();
    switch (op % 5) {
      case 0:  // time passes; what is due is sent
        now += byte() * 20;
        for (const auto& req : c.Due(now)) {
          auto m = stun::Message::Parse(req);
          if (!m.ok()) abort();  // the client's own requests always parse
          asked.push_back(m->tx_id());
        }
        break;
      case 1: {  // an answer to one of its requests
        if (asked.empty()) break;
        const stun::TxId tx = asked[byte() % asked.size()];
        static constexpr uint16_t kMethods[] = {stun::kAllocate, stun::kRefresh, stun::kChannelBind, stun::kBinding};
        const uint8_t kind = byte();
        stun::Builder b(kMethods[kind % 4], (kind & 4) ? stun::Class::kError : stun::Class::kSuccess, tx);
        if (kind & 4) b.AddErrorCode(400 + byte() % 110, "x");
        if (kind & 8) b.AddString(stun::kNonce, std::string(byte() % 40, 'n'));
        if (kind & 16) b.AddString(stun::kRealm, "weft");
        if (kind & 32) b.AddXorAddress(stun::kXorRelayedAddress, *weft::net::Endpoint::Parse("203.0.113.9:50001"));
        if (kind & 64) b.AddU32(stun::kLifetime, byte());
        const size_t n = byte() % 24;
        std::vector<uint8_t> raw(data + std::min(at, size), data + std::min(at + n, size));
        at += n;
        b.AddRaw(static_cast<uint16_t>(0x8000 | byte()), raw);
        const std::vector<uint8_t> wire = b.Finish();
        auto m = stun::Message::Parse(wire);
        if (m.ok()) c.OnMessage(*m, now);
        break;
      }
      case 2: {  // raw bytes from the network
        const size_t n = byte();
        auto m = stun::Message::Parse(absl::Span<const uint8_t>(data + std::min(at, size), std::min(n, size - std::min(at, size))));
        at += n;
        if (m.ok()) c.OnMessage(*m, now);
        break;
      }
      case 3: {  // a peer wants a channel
        weft::net::Endpoint peer{*weft::net::IpAddress::Parse("203.0.113.9"), static_cast<uint16_t>(50000 + byte())};
        auto ch = c.Channel(peer);
        if (ch.ok()) {
          if (c.PeerOf(*ch) != peer || c.ChannelOf(peer) != *ch) abort();
          channels.insert(*ch);
        }
        break;
      }
      case 4:
        (void)c.Release();
        break;
    }
    if (c.state() == weft::turn::TurnClient::State::kFailed && c.failure().ok()) abort();
  }
  return 0;
}
