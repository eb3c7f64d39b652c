// A TURN server (RFC 8656) and STUN Binding server (RFC 8489), as pure logic: datagrams
// in, datagrams out. The caller owns the sockets (weft-relay's event loop); the server
// asks it for a relay socket per allocation (RelayPorts) and says, for every packet it
// produces, which socket sends it where. UDP to clients and peers; long-term credentials
// from a shared secret (turn_credentials.h) with a stateless nonce; per-user allocation
// quota, server capacity and a per-allocation byte-rate limit; every dropped datagram is
// counted by why. It never sees anything but what clients relay (for Weft: WireGuard
// ciphertext).
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

namespace weft::turn {

struct ServerOptions {
  std::string realm = "weft";
  std::string secret;  // the TURN REST shared secret
  std::string software = "weft-relay";
  std::string nonce_key = "weft";  // keys the stateless nonces; random per process
  uint32_t default_lifetime_s = 600;
  uint32_t max_lifetime_s = 3600;
  uint32_t permission_lifetime_s = 300;
  uint32_t channel_lifetime_s = 600;
  int64_t nonce_lifetime_s = 3600;
  size_t max_allocations = 10000;        // capacity: 508 beyond it
  size_t max_allocations_per_user = 16;  // quota: 486 beyond it
  uint64_t max_bytes_per_second = 0;     // per allocation, both ways; 0: unlimited
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

// One datagram to send: from the server's own port (allocation 0) or from an
// allocation's relay socket.
struct Send {
  uint64_t allocation = 0;
  net::Endpoint to;
  std::vector<uint8_t> data;
};

struct Counters {
  uint64_t binding = 0;             // Binding requests answered
  uint64_t malformed = 0;           // not STUN, not ChannelData, or broken
  uint64_t unauthenticated = 0;     // 401/438 answers (missing, wrong, expired credentials)
  uint64_t no_allocation = 0;       // requests or data for a 5-tuple without allocation
  uint64_t no_permission = 0;       // peer data without a permission, client data to such a peer
  uint64_t no_channel = 0;          // ChannelData on an unbound channel
  uint64_t rate_limited = 0;
  uint64_t quota = 0;               // 486 and 508
  uint64_t to_peers = 0;            // datagrams relayed to peers
  uint64_t to_clients = 0;          // datagrams relayed to clients
};

class TurnServer {
 public:
  TurnServer(ServerOptions opts, RelayPorts& ports) : opts_(std::move(opts)), ports_(ports) {}

  // A datagram from `client` to the server's port.
  void OnClient(const net::Endpoint& client, absl::Span<const uint8_t> pkt, int64_t now_ms, std::vector<Send>& out);
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
    net::Endpoint client;
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

  void OnRequest(const net::Endpoint& client, const stun::Message& m, int64_t now_ms, std::vector<Send>& out);
  // Checks long-term credentials; on failure queues the 401/438 answer.
  Auth Authenticate(const net::Endpoint& client, const stun::Message& m, int64_t now_ms, std::vector<Send>& out);
  std::string Nonce(const net::Endpoint& client, int64_t now_ms) const;
  bool NonceValid(const net::Endpoint& client, absl::string_view nonce, int64_t now_ms) const;
  void Error(const net::Endpoint& client, const stun::Message& m, int code, absl::string_view reason,
             const std::vector<uint8_t>* key, std::vector<Send>& out);
  void Allocate(const net::Endpoint& client, const stun::Message& m, const Auth& a, int64_t now_ms, std::vector<Send>& out);
  void Remove(uint64_t id);
  bool Spend(Allocation& a, size_t bytes, int64_t now_ms);
  Allocation* ByClient(const net::Endpoint& client);

  const ServerOptions opts_;
  RelayPorts& ports_;
  Counters counters_;
  uint64_t next_id_ = 1;
  uint64_t data_seq_ = 0;  // Data indications' transaction IDs
  std::map<uint64_t, Allocation> allocations_;
  std::map<net::Endpoint, uint64_t> by_client_;
  std::map<std::string, size_t> per_user_;
};

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_TURN_SERVER_H_
