#include "lib/nat/port_probe.h"

#include <openssl/rand.h>

#include "lib/stun/shared_port.h"

namespace weft::nat {

absl::StatusOr<PortProbeReport> ProbePort(uint16_t port, const std::vector<net::Endpoint>& targets,
                                          const std::vector<net::IpAddress>& local_ips,
                                          const NatProber::Options& base) {
  auto sock = stun::SharedPortStun::Open(port);
  if (!sock.ok()) return sock.status();
  NatProber::Options opts = base;
  opts.targets = targets;
  opts.local_port = port;
  opts.local_ips = local_ips;
  absl::Status send_error;
  NatProber prober(
      opts,
      [&](absl::Span<const uint8_t> pkt, const net::Endpoint& to) {
        // A target we cannot even route to is simply one that does not answer.
        if (absl::Status s = sock->Send(pkt, to); !s.ok() && send_error.ok()) send_error = s;
      },
      [] {
        stun::TxId tx;
        RAND_bytes(tx.data(), static_cast<int>(tx.size()));
        return tx;
      });
  const auto start = Clock::now();
  prober.Start(start);
  while (!prober.done()) {
    const auto now = Clock::now();
    if (now >= prober.NextTimer()) {
      prober.OnTimer(now);
      continue;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(prober.NextTimer() - now) +
                std::chrono::milliseconds(1);
    auto d = sock->Receive(wait);
    if (d.ok()) prober.OnPacket(d->payload, d->from, Clock::now());
  }
  return PortProbeReport{prober.verdict(), prober.observations(), prober.counters(),
                         std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

}  // namespace weft::nat
