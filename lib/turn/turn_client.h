// The protocol half of a TURN client (RFC 8656) over UDP or TCP, pure: which requests
// to send and when, and what the server's answers mean. The caller owns the socket, the
// clock and the data path (ChannelData goes straight between sockets: channel_data.h).
// Used by the agent's relay path (node-agent/relay_client): allocate with TURN REST
// credentials (the 401 brings realm and nonce; a 438 brings a fresh nonce and the request
// is signed again at once), refresh at half the lifetime and every second until it
// succeeds, bind a channel per peer and keep it bound (every 4 minutes; every second until
// bound), and ask a Binding each second so that the caller can tell a dead relay.
#ifndef WEFT_LIB_TURN_TURN_CLIENT_H_
#define WEFT_LIB_TURN_TURN_CLIENT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/net/endpoint.h"
#include "lib/stun/stun_message.h"

namespace weft::turn {

class TurnClient {
 public:
  struct Options {
    std::string username, password;
    uint32_t lifetime_s = 600;  // asked for; the server's answer rules
    uint64_t tx_seed = 0;       // transaction IDs: random per client (tests fix it)
  };
  enum class State { kAllocating, kAllocated, kFailed };

  // Channel numbers handed out: 0x4000 upwards, within RFC 5766's 0x4000-0x7FFE (what
  // coturn and weft-relay accept; RFC 8656 narrowed it to 0x4FFF: a node relaying to more
  // than 4,096 peers needs the wider range).
  static constexpr uint16_t kFirstChannel = 0x4000;
  static constexpr size_t kMaxChannels = 0x3FFF;
  // Allocate: a try each 400 ms, 8 tries.
  static constexpr int kAllocateTries = 8;
  static constexpr int64_t kAllocateRetryMs = 400;

  explicit TurnClient(Options opts);

  // The requests due at `now_ms`, in order: send each as one datagram or stream frame.
  std::vector<std::vector<uint8_t>> Due(int64_t now_ms);
  // A STUN answer from the server (Data indications and ChannelData are the caller's).
  void OnMessage(const stun::Message& m, int64_t now_ms);

  // The channel for `peer` (a peer's relayed address), bound in the background and kept
  // bound; ResourceExhausted when none is left.
  absl::StatusOr<uint16_t> Channel(const net::Endpoint& peer);
  bool bound(uint16_t channel) const;
  // The peer of a channel handed out, and the channel of a peer.
  std::optional<net::Endpoint> PeerOf(uint16_t channel) const;
  std::optional<uint16_t> ChannelOf(const net::Endpoint& peer) const;

  // A Refresh with lifetime 0 (the allocation released), signed; empty before allocated.
  std::vector<uint8_t> Release();

  State state() const { return state_; }
  // Why kFailed: PermissionDenied (credentials refused), Unavailable (refused otherwise,
  // or the allocation was lost), DeadlineExceeded (no answer to Allocate).
  const absl::Status& failure() const { return failure_; }
  const net::Endpoint& relayed() const { return relayed_; }
  uint32_t lifetime_s() const { return lifetime_s_; }

 private:
  enum class Purpose { kAllocate, kRefresh, kChannelBind, kBinding };
  struct Pending {
    Purpose purpose;
    uint16_t channel = 0;
  };
  struct Bind {
    net::Endpoint peer;
    bool bound = false;
    int64_t sent_ms = -1;  // last ChannelBind sent; -1: never
  };

  stun::TxId NextTx();
  std::vector<uint8_t> Signed(stun::Builder& b) const;
  std::vector<uint8_t> Request(uint16_t method, Purpose purpose, uint16_t channel = 0);
  void Fail(absl::Status why);

  const Options opts_;
  State state_ = State::kAllocating;
  absl::Status failure_;
  uint64_t tx_counter_ = 0;
  std::string realm_, nonce_;
  std::vector<uint8_t> key_;
  int allocate_tries_ = 0;
  int unauthorized_ = 0;           // 401s to Allocates (the first is the challenge)
  int64_t allocate_sent_ms_ = -1;
  net::Endpoint relayed_;
  uint32_t lifetime_s_;
  int64_t refreshed_ms_ = 0;       // allocated or last refreshed
  bool refresh_pending_ = false;   // a Refresh sent, not yet answered with success
  int64_t refresh_sent_ms_ = 0;
  int64_t probe_sent_ms_ = -1;
  std::map<stun::TxId, Pending> pending_;
  std::map<uint16_t, Bind> channels_;
  std::map<net::Endpoint, uint16_t> by_peer_;
};

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_TURN_CLIENT_H_
