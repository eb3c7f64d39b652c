// libFuzzer: weft-relay's TURN server past authentication. The fuzzer knows the secret:
// the input is a script of steps, and the requests it describes are signed with valid
// credentials and a fresh nonce, so allocations, permissions, channels, refreshes, data
// both ways, TCP clients going away, secret rotations and expiry are all reached. The
// server must not crash, and must stay within its bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/turn/turn_credentials.h"
#include "lib/turn/turn_server.h"

namespace {

using weft::net::Endpoint;
using weft::turn::Client;
using weft::turn::Transport;
namespace stun = weft::stun;

constexpr char kSecret[] = "fuzz-secret-0123456789";
constexpr char kOldSecret[] = "old-secret-0123456789";

class Ports : public weft::turn::RelayPorts {
 public:
  absl::StatusOr<Endpoint> Open(uint64_t id, bool) override {
    return Endpoint{*weft::net::IpAddress::Parse("203.0.113.9"), static_cast<uint16_t>(50000 + id % 10000)};
  }
  void Close(uint64_t) override {}
};

// Reads the script.
struct Reader {
  const uint8_t* p;
  size_t left;
  uint8_t Byte() {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
  absl::Span<const uint8_t> Bytes(size_t n) {
    n = std::min(n, left);
    absl::Span<const uint8_t> s(p, n);
    p += n;
    left -= n;
    return s;
  }
};

const Endpoint& PickPeer(uint8_t b) {
  static const std::vector<Endpoint> peers = {
      *Endpoint::Parse("203.0.113.9:50001"), *Endpoint::Parse("203.0.113.9:50002"),
      *Endpoint::Parse("203.0.113.9:3478"),  *Endpoint::Parse("198.51.100.200:60000"),
      *Endpoint::Parse("127.0.0.1:50001"),   *Endpoint::Parse("0.0.0.0:50001"),
      *Endpoint::Parse("239.1.2.3:50001"),   *Endpoint::Parse("192.0.2.1:51820")};
  return peers[b % peers.size()];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Ports ports;
  weft::turn::ServerOptions o{.secrets = {kSecret}, .max_allocations = 16, .max_permissions = 4};
  o.peers.relay_ips = {*weft::net::IpAddress::Parse("203.0.113.9"), *weft::net::IpAddress::Parse("198.51.100.200")};
  o.peers.own = {*Endpoint::Parse("0.0.0.0:3478")};
  weft::turn::TurnServer server(o, ports);
  const Client clients[] = {{Transport::kUdp, *Endpoint::Parse("198.51.100.7:51820")},
                            {Transport::kUdp, *Endpoint::Parse("198.51.100.8:51820")},
                            {Transport::kTcp, *Endpoint::Parse("198.51.100.7:51820")},
                            {Transport::kTcp, *Endpoint::Parse("198.51.100.9:40000")}};
  int64_t now = 1800000000000;
  Reader in{data, size};
  std::vector<weft::turn::Send> out;
  bool rotated = false;
  for (int step = 0; step < 64 && in.left > 0; ++step) {
    const uint8_t op = in.Byte();
    const Client& client = clients[(op >> 3) % 4];
    out.clear();
    switch (op & 7) {
      case 0: {  // a signed request with fuzzed attributes
        static constexpr uint16_t kMethods[] = {stun::kAllocate, stun::kRefresh, stun::kCreatePermission,
                                                stun::kChannelBind, stun::kBinding, 0x0fff};
        const uint16_t method = kMethods[in.Byte() % 6];
        stun::TxId tx{};
        tx[0] = static_cast<uint8_t>(step);
        // The nonce for this client now: from the challenge to an unsigned request.
        stun::Builder probe(stun::kAllocate, stun::Class::kRequest, tx);
        probe.AddU32(stun::kRequestedTransport, 17u << 24);
        server.OnClient(client, probe.Finish(), now, out);
        std::string nonce = "x";
        if (!out.empty()) {
          if (auto m = stun::Message::Parse(out.back().data); m.ok()) {
            if (auto n = m->GetString(stun::kNonce); n.ok()) nonce = *n;
          }
        }
        stun::Builder b(method, stun::Class::kRequest, tx);
        const uint8_t flags = in.Byte();
        if (flags & 1) b.AddU32(stun::kRequestedTransport, 17u << 24);
        if (flags & 2) b.AddXorAddress(stun::kXorPeerAddress, PickPeer(in.Byte()));
        if (flags & 4) b.AddU32(stun::kChannelNumber, uint32_t{0x4000u + in.Byte() % 4} << 16);
        if (flags & 8) b.AddU32(stun::kLifetime, in.Byte() * 30u);
        for (int a = in.Byte() % 4; a > 0; --a) {  // raw attributes
          const uint16_t type = static_cast<uint16_t>(in.Byte() << 8 | in.Byte());
          b.AddRaw(type, in.Bytes(in.Byte() % 32));
        }
        const int64_t expiry = now / 1000 + ((flags & 16) ? 3600 : (flags & 32) ? -5 : 400 * 86400);
        const weft::turn::Credentials c =
            weft::turn::IssueCredentials((flags & 64) ? kOldSecret : kSecret, absl::StrCat("node-", flags >> 7), expiry);
        b.AddString(stun::kUsername, c.username).AddString(stun::kRealm, "weft").AddString(stun::kNonce, nonce);
        b.AddIntegrity(stun::LongTermKey(c.username, "weft", c.password));
        out.clear();
        server.OnClient(client, b.Finish(), now, out);
        break;
      }
      case 1:  // anything from a client
        server.OnClient(client, in.Bytes(in.Byte()), now, out);
        break;
      case 2:  // a peer's datagram to an allocation
        server.OnPeer(in.Byte() % 20, PickPeer(in.Byte()), in.Bytes(in.Byte()), now, out);
        break;
      case 3: {  // ChannelData
        std::vector<uint8_t> cd = {0x40, static_cast<uint8_t>(in.Byte() % 4), 0, 0};
        auto payload = in.Bytes(in.Byte());
        cd[2] = static_cast<uint8_t>(payload.size() >> 8);
        cd[3] = static_cast<uint8_t>(payload.size());
        cd.insert(cd.end(), payload.begin(), payload.end());
        server.OnClient(client, cd, now, out);
        break;
      }
      case 4:  // time passes
        now += int64_t{in.Byte()} * 10000;
        server.Expire(now);
        break;
      case 5:
        server.ClientGone(client);
        break;
      case 6:  // a rotation: both secrets, then the new alone
        rotated = !rotated;
        server.SetSecrets(rotated ? std::vector<std::string>{kSecret, kOldSecret} : std::vector<std::string>{kSecret});
        break;
      case 7: {  // a Send indication
        stun::TxId tx{};
        stun::Builder b(stun::kSend, stun::Class::kIndication, tx);
        b.AddXorAddress(stun::kXorPeerAddress, PickPeer(in.Byte())).AddRaw(stun::kDataAttr, in.Bytes(in.Byte()));
        server.OnClient(client, b.Finish(false), now, out);
        break;
      }
    }
    if (server.allocations() > 16) abort();
    for (const auto& s : out) {
      // Nothing goes to a peer the policy refuses (loopback, unspecified, multicast, own port).
      if (s.allocation != 0) {
        const std::string to = s.to.ToString();
        if (to == "127.0.0.1:50001" || to == "0.0.0.0:50001" || to == "239.1.2.3:50001" || to == "203.0.113.9:3478" ||
            to == "192.0.2.1:51820") {
          abort();
        }
      }
    }
  }
  return 0;
}
