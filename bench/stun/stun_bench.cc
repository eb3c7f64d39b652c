// bench/stun: STUN Binding encode/decode throughput of lib/stun (one core, in memory).
//
//   build/bench/stun/stun_bench [--seconds 2]
#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "lib/stun/stun_message.h"
#include "lib/flags/flags.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
double Rate(double seconds, Fn fn) {
  // Calibrate in batches so the clock is read rarely.
  uint64_t n = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  Clock::time_point now;
  do {
    for (int i = 0; i < 1000; ++i) fn(n + i);
    n += 1000;
    now = Clock::now();
  } while (now < end);
  return n / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft::stun;
  int seconds = 2;
  weft::flags::FlagSet f("stun_bench", "stun_bench [--seconds N]   (STUN Binding encode/decode rates)");
  f.Int("seconds", &seconds, 1, 3600, "per measurement");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  volatile size_t sink = 0;
  TxId tx{};
  const double encode = Rate(seconds, [&](uint64_t i) {
    tx[0] = static_cast<uint8_t>(i);
    sink = sink + BuildBindingRequest(tx).size();
  });
  const auto resp = Builder(kBinding, Class::kSuccess, tx)
                        .AddXorAddress(kXorMappedAddress, *weft::net::Endpoint::Parse("198.51.100.21:51820"))
                        .AddString(kSoftware, "weft")
                        .Finish();
  const double decode = Rate(seconds, [&](uint64_t) {
    auto r = ParseBindingResponse(resp);
    sink = sink + r->mapped.port;
  });
  const auto req = BuildBindingRequest(tx);
  const double request_decode = Rate(seconds, [&](uint64_t) {
    auto m = Message::Parse(req);
    sink = sink + m->attributes().size();
  });
  std::printf("bench/stun (1 core, %d s each):\n", seconds);
  std::printf("  encode Binding request (with FINGERPRINT):          %8.2f M/s\n", encode / 1e6);
  std::printf("  decode Binding request (FINGERPRINT checked):        %8.2f M/s\n", request_decode / 1e6);
  std::printf("  decode Binding success (XOR-MAPPED, SOFTWARE, FP):   %8.2f M/s\n", decode / 1e6);
  return sink == 0;
}
