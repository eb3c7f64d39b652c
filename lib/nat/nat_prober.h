// Probes the NAT mapping of one UDP port with STUN Binding requests to several targets.
//
// Pure logic: it owns no socket and no clock. The caller sends what SendFn is given
// (from the probed port: see lib/stun/shared_port.h for the WireGuard port), feeds every
// STUN datagram arriving on that port to OnPacket, and calls OnTimer at NextTimer().
#ifndef WEFT_LIB_NAT_NAT_PROBER_H_
#define WEFT_LIB_NAT_NAT_PROBER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/types/span.h"
#include "lib/nat/nat_classifier.h"
#include "lib/net/endpoint.h"
#include "lib/stun/stun_message.h"

namespace weft::nat {

using Clock = std::chrono::steady_clock;

class NatProber {
 public:
  using SendFn = absl::AnyInvocable<void(absl::Span<const uint8_t> pkt, const net::Endpoint& to)>;
  using TxIdFn = absl::AnyInvocable<stun::TxId()>;

  struct Options {
    std::vector<net::Endpoint> targets;  // three or more, distinct addresses
    // One more destination, probed as a fresh flow (marked in its Probe): see fresh_flows.h.
    std::optional<net::Endpoint> fresh;
    uint16_t local_port = 0;
    std::vector<net::IpAddress> local_ips;
    // Requests are resent after these delays from the start (RFC 8489 retransmits,
    // compressed: a probe round must finish quickly); the round ends at `deadline`.
    std::vector<std::chrono::milliseconds> resend_at = {std::chrono::milliseconds(250),
                                                        std::chrono::milliseconds(750),
                                                        std::chrono::milliseconds(1500)};
    std::chrono::milliseconds deadline{2500};
  };

  struct Counters {
    uint64_t sent = 0;
    uint64_t answers = 0;
    uint64_t malformed = 0;       // not parseable STUN, bad FINGERPRINT, not a response
    uint64_t unknown_tx = 0;      // a transaction ID we did not send (spoofed or stale)
    uint64_t wrong_source = 0;    // right transaction, but not from the target we asked
  };

  NatProber(Options opts, SendFn send, TxIdFn new_tx);

  // Sends the first request to every target.
  void Start(Clock::time_point now);
  // A datagram that arrived on the probed port from `from`. Returns whether it answered
  // one of our requests; anything else is dropped and counted, never believed.
  bool OnPacket(absl::Span<const uint8_t> pkt, const net::Endpoint& from, Clock::time_point now);
  // Resends unanswered requests when due; ends the round at the deadline.
  void OnTimer(Clock::time_point now);
  Clock::time_point NextTimer() const;

  bool done() const { return done_; }
  Verdict verdict() const;
  const Observations& observations() const { return obs_; }
  const Counters& counters() const { return counters_; }

 private:
  void SendTo(size_t target, Clock::time_point now);

  Options opts_;
  SendFn send_;
  TxIdFn new_tx_;
  Observations obs_;
  struct Sent {
    size_t target;
    Clock::time_point at;
  };
  std::map<stun::TxId, Sent> pending_;
  Clock::time_point start_{};
  size_t next_resend_ = 0;
  bool started_ = false;
  bool done_ = false;
  Counters counters_;
};

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_NAT_PROBER_H_
