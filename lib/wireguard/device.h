// One interface to a WireGuard device, two backends: the kernel module over generic
// netlink, and a userspace implementation (wireguard-go) over its UAPI socket.
#ifndef WEFT_LIB_WIREGUARD_DEVICE_H_
#define WEFT_LIB_WIREGUARD_DEVICE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "lib/net/ip_address.h"
#include "lib/wireguard/key.h"

namespace weft::wireguard {

// A change to one peer. Fields left unset are left as they are.
struct PeerConfig {
  Key public_key;
  bool remove = false;                        // delete this peer
  std::optional<Key> preshared_key;
  std::optional<net::Endpoint> endpoint;
  std::optional<int> persistent_keepalive;    // seconds, 0 = off
  bool replace_allowed_ips = false;           // drop existing allowed IPs first
  std::vector<net::IpPrefix> allowed_ips;     // added
  friend bool operator==(const PeerConfig&, const PeerConfig&) = default;
};

// A change to the device.
struct DeviceConfig {
  std::optional<Key> private_key;
  std::optional<uint16_t> listen_port;
  std::optional<uint32_t> fwmark;
  bool replace_peers = false;  // remove every peer not listed
  std::vector<PeerConfig> peers;
};

struct PeerStatus {
  Key public_key;
  std::optional<net::Endpoint> endpoint;
  int persistent_keepalive = 0;
  std::vector<net::IpPrefix> allowed_ips;
  // Zero when no handshake has completed yet.
  std::chrono::system_clock::time_point last_handshake{};
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
};

struct DeviceStatus {
  Key private_key;
  Key public_key;
  uint16_t listen_port = 0;
  uint32_t fwmark = 0;
  std::vector<PeerStatus> peers;
};

class Device {
 public:
  virtual ~Device() = default;
  // Applies `config`. Peers are sent in as many messages as the backend needs.
  virtual absl::Status Set(const DeviceConfig& config) = 0;
  virtual absl::StatusOr<DeviceStatus> Get() = 0;
};

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_DEVICE_H_
