// libFuzzer: anything a client or a peer can send to weft-relay. The server must not
// crash or grow without bound; most input is dropped and counted.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lib/turn/turn_server.h"

namespace {

class Ports : public weft::turn::RelayPorts {
 public:
  absl::StatusOr<weft::net::Endpoint> Open(uint64_t id, bool) override {
    return weft::net::Endpoint{*weft::net::IpAddress::Parse("203.0.113.9"), static_cast<uint16_t>(id & 0xffff)};
  }
  void Close(uint64_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Ports ports;
  static weft::turn::TurnServer server({.secrets = {"fuzz-secret-0123456789"}, .max_allocations = 64}, ports);
  if (size == 0) return 0;
  const auto client = *weft::net::Endpoint::Parse(data[0] & 1 ? "198.51.100.7:51820" : "198.51.100.8:4000");
  std::vector<weft::turn::Send> out;
  if (data[0] & 2) {
    server.OnPeer(data[0] >> 4, client, absl::Span<const uint8_t>(data + 1, size - 1), 1800000000000, out);
  } else {
    server.OnClient(client, absl::Span<const uint8_t>(data + 1, size - 1), 1800000000000, out);
  }
  return 0;
}
