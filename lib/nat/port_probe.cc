#include "lib/nat/port_probe.h"

#include <openssl/rand.h>

#include "lib/stun/shared_port.h"

namespace weft::nat {
namespace {

stun::TxId RandomTx() {
  stun::TxId tx;
  RAND_bytes(tx.data(), static_cast<int>(tx.size()));
  return tx;
}

// Sends a Binding request to our own public endpoint; if the NAT hairpins, the request
// itself arrives back on the port (the raw socket's filter passes it: right port, magic
// cookie), and we recognize it by its transaction ID.
bool TestHairpin(stun::SharedPortStun& sock, const net::Endpoint& reflexive, std::chrono::milliseconds wait) {
  const stun::TxId tx = RandomTx();
  if (!sock.Send(stun::BuildBindingRequest(tx), reflexive).ok()) return false;
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) + std::chrono::milliseconds(1);
    auto d = sock.Receive(left);
    if (!d.ok()) break;
    auto m = stun::Message::Parse(d->payload);
    if (m.ok() && m->message_class() == stun::Class::kRequest && m->tx_id() == tx) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<PortProbeReport> ProbePort(uint16_t port, const std::vector<net::Endpoint>& targets,
                                          const std::vector<net::IpAddress>& local_ips,
                                          const NatProber::Options& base,
                                          std::chrono::milliseconds hairpin_wait) {
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
      [] { return RandomTx(); });
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
  Observations obs = prober.observations();
  Verdict first = Classify(obs);
  if (first.reflexive && first.mapping != Mapping::kNone && hairpin_wait.count() > 0) {
    obs.hairpin = TestHairpin(*sock, *first.reflexive, hairpin_wait);
  }
  return PortProbeReport{Classify(obs), obs, prober.counters(),
                         std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

}  // namespace weft::nat
