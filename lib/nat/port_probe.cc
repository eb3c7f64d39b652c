#include "lib/nat/port_probe.h"

#include <openssl/rand.h>

#include <set>

#include "absl/functional/function_ref.h"
#include "lib/stun/shared_port.h"

namespace weft::nat {
namespace {

stun::TxId RandomTx() {
  stun::TxId tx;
  RAND_bytes(tx.data(), static_cast<int>(tx.size()));
  return tx;
}

// Receives datagrams on the port until one satisfies `match`, or `wait` has passed.
bool AwaitDatagram(stun::SharedPortStun& sock, std::chrono::milliseconds wait,
                   absl::FunctionRef<bool(const stun::SharedPortStun::Datagram&)> match) {
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) + std::chrono::milliseconds(1);
    auto d = sock.Receive(left);
    if (!d.ok()) return false;
    if (match(*d)) return true;
  }
  return false;
}

// Sends a Binding request to our own public endpoint; if the NAT hairpins, the request
// itself arrives back on the port (the raw socket's filter passes it: right port, magic
// cookie), and we recognize it by its transaction ID.
bool TestHairpin(stun::SharedPortStun& sock, const net::Endpoint& reflexive, std::chrono::milliseconds wait) {
  const stun::TxId tx = RandomTx();
  if (!sock.Send(stun::BuildBindingRequest(tx), reflexive).ok()) return false;
  return AwaitDatagram(sock, wait, [&](const stun::SharedPortStun::Datagram& d) {
    auto m = stun::Message::Parse(d.payload);
    return m.ok() && m->message_class() == stun::Class::kRequest && m->tx_id() == tx;
  });
}

// Waits for a Binding success with transaction `tx` from `from`.
bool AwaitAnswer(stun::SharedPortStun& sock, const stun::TxId& tx, const net::Endpoint& from,
                 std::chrono::milliseconds wait) {
  return AwaitDatagram(sock, wait, [&](const stun::SharedPortStun::Datagram& d) {
    auto r = stun::ParseBindingResponse(d.payload);
    return r.ok() && r->tx_id == tx && d.from == from;
  });
}

// RFC 5780 section 4.4 filtering tests against a server that has an alternate address:
// ask it to answer from the other address and port, then from the other port only. An
// answer that reaches us passed the NAT's filter although we never sent to its source.
void TestFiltering(stun::SharedPortStun& sock, const Probe& p, std::chrono::milliseconds wait, Observations& obs,
                   std::vector<net::Endpoint>& solicited) {
  constexpr uint32_t kChangeIp = 0x04, kChangePort = 0x02;
  const net::Endpoint other = *p.other_address;
  solicited.push_back(other);
  stun::TxId tx = RandomTx();
  auto req = stun::Builder(stun::kBinding, stun::Class::kRequest, tx).AddU32(stun::kChangeRequest, kChangeIp | kChangePort).Finish();
  if (!sock.Send(req, p.server).ok()) return;
  obs.answered_from_other_address = AwaitAnswer(sock, tx, other, wait);
  if (*obs.answered_from_other_address) return;
  tx = RandomTx();
  solicited.push_back(net::Endpoint{p.server.ip, other.port});
  req = stun::Builder(stun::kBinding, stun::Class::kRequest, tx).AddU32(stun::kChangeRequest, kChangePort).Finish();
  if (!sock.Send(req, p.server).ok()) return;
  obs.answered_from_other_port = AwaitAnswer(sock, tx, net::Endpoint{p.server.ip, other.port}, wait);
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
  std::set<net::Endpoint> unroutable;
  NatProber prober(
      opts,
      [&](absl::Span<const uint8_t> pkt, const net::Endpoint& to) {
        // A target we cannot even route to does not answer, and says why.
        if (!sock->Send(pkt, to).ok()) unroutable.insert(to);
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
  obs.unroutable = static_cast<int>(unroutable.size());
  Verdict first = Classify(obs);
  std::vector<net::Endpoint> solicited;
  if (hairpin_wait.count() > 0) {
    for (const Probe& p : obs.probes) {
      if (p.mapped && p.other_address && p.other_address->ip != p.server.ip) {
        TestFiltering(*sock, p, hairpin_wait, obs, solicited);
        break;
      }
    }
  }
  if (first.reflexive && first.mapping != Mapping::kNone && hairpin_wait.count() > 0) {
    obs.hairpin = TestHairpin(*sock, *first.reflexive, hairpin_wait);
  }
  return PortProbeReport{Classify(obs), obs, prober.counters(),
                         std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start),
                         std::move(solicited)};
}

}  // namespace weft::nat
