// A TURN server (RFC 8656) and STUN Binding server (RFC 8489), as pure logic: datagrams
// in, datagrams out. The caller owns the sockets (weft-relay's event loop); the server
// asks it for a relay socket per allocation (RelayPorts) and says, for every packet it
// produces, which socket sends it where. Clients over UDP or TCP (the transport is part
// of the 5-tuple: an allocation belongs to one), UDP to peers; long-term credentials from
// shared secrets (turn_credentials.h; several during a rotation) with stateless nonces
// bound to the client's 5-tuple that expire; peers limited by a PeerPolicy (403);
// per-user allocation quota, server capacity, permissions per allocation and a
// per-allocation byte-rate limit; nothing answered before authentication is larger than
// the request, except the 401/438 challenge RFC 8489 requires; every dropped datagram and
// refused request is counted by why. It never sees anything but what clients relay (for
// Weft: WireGuard ciphertext).
#ifndef WEFT_LIB_TURN_TURN_SERVER_H_
#define WEFT_LIB_TURN_TURN_SERVER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/net/endpoint.h"
#include "lib/stun/stun_message.h"
#include "lib/turn/peer_policy.h"

namespace weft::turn {

struct ServerOptions {
  std::string realm = "weft";
  // The TURN REST shared secrets a credential may be signed with: one, or during a
  // rotation the new and the old.
  std::vector<std::string> secrets;
  std::string software = "weft-relay";
  std::string nonce_key = "weft";  // keys the stateless nonces; random per process
  uint32_t default_lifetime_s = 600;
  uint32_t max_lifetime_s = 3600;
  uint32_t permission_lifetime_s = 300;
  uint32_t channel_lifetime_s = 600;
  int64_t nonce_lifetime_s = 600;  // then 438: a captured request cannot be replayed later
  // A username whose expiry is further away than this is refused (401): whoever holds
  // the secret issues for 24 h; a credential for 2100 is a leak waiting to happen.
  int64_t max_credential_lifetime_s = 25 * 3600;
  size_t max_allocations = 10000;        // capacity: 508 beyond it
  size_t max_allocations_per_user = 16;  // quota: 486 beyond it
  size_t max_permissions = 64;           // peer IPs per allocation: 508 beyond it
  uint64_t max_bytes_per_second = 0;     // per allocation, both ways; 0: unlimited
  PeerPolicyOptions peers;
};

// How a client reaches the server; part of the 5-tuple.
enum class Transport : uint8_t { kUdp, kTcp };

struct Client {
  Transport transport = Transport::kUdp;
  net::Endpoint address;
  friend auto operator<=>(const Client&, const Client&) = default;
  friend bool operator==(const Client&, const Client&) = default;
};

// The relay sockets, owned by the event loop.
class RelayPorts {
 public:
  virtual ~RelayPorts() = default;
  // A new UDP socket for allocation `id` (on an even port if asked: EVEN-PORT); returns
  // its address (the relayed address).
  virtual absl::StatusOr<net::Endpoint> Open(uint64_t id, bool even_port) = 0;
  virtual void Close(uint64_t id) = 0;
};

// One datagram to send: from the server's own port (allocation 0; to a client over
// `transport`) or from an allocation's relay socket (to a peer, UDP).
struct Send {
  uint64_t allocation = 0;
  net::Endpoint to;
  std::vector<uint8_t> data;
  Transport transport = Transport::kUdp;
};

struct Counters {
  uint64_t binding = 0;             // Binding requests answered
  uint64_t malformed = 0;           // not STUN, not ChannelData, or broken
  uint64_t unauthenticated = 0;     // 401/438 answers (missing, wrong, expired credentials)
  uint64_t no_allocation = 0;       // data for a 5-tuple without allocation (or to a gone one)
  uint64_t no_permission = 0;       // peer data without a permission, client data to such a peer
  uint64_t no_channel = 0;          // ChannelData on an unbound channel
  uint64_t rate_limited = 0;
  uint64_t quota = 0;               // 486 and 508 (allocations, permissions)
  uint64_t forbidden = 0;           // 403s and data to peers the policy refuses
  uint64_t unknown_attribute = 0;   // 420 answers
  uint64_t refused = 0;             // other error answers (400, 437, 440-443)
  uint64_t not_answered = 0;        // unauthenticated answers larger than their request
  uint64_t to_peers = 0;            // datagrams relayed to peers
  uint64_t to_clients = 0;          // datagrams relayed to clients
};

class TurnServer {
 public:
  TurnServer(ServerOptions opts, RelayPorts& ports)
      : opts_(std::move(opts)), policy_(opts_.peers), secrets_(opts_.secrets), ports_(ports) {}

  // A datagram (a whole frame, over TCP) from `client` to the server's port.
  void OnClient(const Client& client, absl::Span<const uint8_t> pkt, int64_t now_ms, std::vector<Send>& out);
  void OnClient(const net::Endpoint& udp_client, absl::Span<const uint8_t> pkt, int64_t now_ms, std::vector<Send>& out) {
    OnClient(Client{Transport::kUdp, udp_client}, pkt, now_ms, out);
  }
  // `client`'s connection is gone (TCP): its allocation with it.
  void ClientGone(const Client& client);
  // Whether `client` holds an allocation (a TCP connection without one is closed soon).
  bool HasAllocation(const Client& client) const { return by_client_.contains(client); }
  // The relays' relayed IPs change (other relays come and go).
  void SetRelayIps(std::vector<net::IpAddress> ips) { policy_.set_relay_ips(std::move(ips)); }
  // The shared secrets change (a rotation: new and old, then new alone). Allocations
  // made under a secret no longer listed keep their key until they end.
  void SetSecrets(std::vector<std::string> secrets) { secrets_ = std::move(secrets); }
  // A datagram from `peer` to allocation `id`'s relay socket.
  void OnPeer(uint64_t id, const net::Endpoint& peer, absl::Span<const uint8_t> pkt, int64_t now_ms,
              std::vector<Send>& out);
  // Drops allocations, permissions and channels whose time is up.
  void Expire(int64_t now_ms);

  const Counters& counters() const { return counters_; }
  size_t allocations() const { return allocations_.size(); }

 private:
  struct Channel {
    net::Endpoint peer;
    int64_t expiry_ms = 0;
  };
  struct Allocation {
    uint64_t id = 0;
    Client client;
    std::string username;
    std::vector<uint8_t> key;
    net::Endpoint relayed;
    int64_t expiry_ms = 0;
    std::map<net::IpAddress, int64_t> permissions;  // peer IP → expiry
    std::map<uint16_t, Channel> channels;
    std::map<net::Endpoint, uint16_t> channel_of;
    double tokens = 0;  // rate limit: bytes that may still pass
    int64_t tokens_at_ms = 0;
  };
  struct Auth {
    bool ok = false;
    std::vector<uint8_t> key;
    std::string username;
  };

  void OnRequest(const Client& client, const stun::Message& m, size_t request_size, int64_t now_ms,
                 std::vector<Send>& out);
  // Checks long-term credentials; on failure queues the 401/438 answer.
  Auth Authenticate(const Client& client, const stun::Message& m, size_t request_size, int64_t now_ms,
                    std::vector<Send>& out);
  std::string Nonce(const Client& client, int64_t now_ms) const;
  bool NonceValid(const Client& client, absl::string_view nonce, int64_t now_ms) const;
  // An error answer signed with `key`; 403s and 508s are counted by the caller.
  void Error(const Client& client, const stun::Message& m, int code, absl::string_view reason,
             const std::vector<uint8_t>& key, std::vector<Send>& out);
  // An error answer before authentication: no reason, no SOFTWARE, and not sent (but
  // counted) when larger than the request.
  void ErrorUnauthenticated(const Client& client, const stun::Message& m, size_t request_size, int code,
                            absl::Span<const uint8_t> unknown, std::vector<Send>& out);
  void Allocate(const Client& client, const stun::Message& m, const Auth& a, int64_t now_ms, std::vector<Send>& out);
  // A peer this allocation may reach: one of this relay's own allocations, or what the
  // policy allows.
  absl::Status PeerAllowed(const net::Endpoint& peer) const;
  void Remove(uint64_t id);
  bool Spend(Allocation& a, size_t bytes, int64_t now_ms);
  Allocation* ByClient(const Client& client);

  const ServerOptions opts_;
  PeerPolicy policy_;
  std::vector<std::string> secrets_;
  RelayPorts& ports_;
  Counters counters_;
  uint64_t next_id_ = 1;
  uint64_t data_seq_ = 0;  // Data indications' transaction IDs
  std::map<uint64_t, Allocation> allocations_;
  std::map<Client, uint64_t> by_client_;
  std::map<net::Endpoint, uint64_t> by_relayed_;
  std::map<std::string, size_t> per_user_;
};

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_TURN_SERVER_H_
