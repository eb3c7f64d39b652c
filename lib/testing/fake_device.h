// A WireGuard device in memory, for unit tests of what writes one (the agent's
// reconciler): Set applies a DeviceConfig with WireGuard's semantics (fields left unset
// stay, replace_allowed_ips, remove, replace_peers) and every Set is recorded, so a test
// can tell what was written, and that an unchanged peer was not.
#ifndef WEFT_LIB_TESTING_FAKE_DEVICE_H_
#define WEFT_LIB_TESTING_FAKE_DEVICE_H_

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "lib/wireguard/device.h"

namespace weft::testing {

class FakeDevice : public wireguard::Device {
 public:
  absl::Status Set(const wireguard::DeviceConfig& config) override {
    if (fail_next_) {
      fail_next_ = false;
      return absl::UnavailableError("fake device: write refused");
    }
    sets_.push_back(config);
    if (config.private_key) status_.private_key = *config.private_key;
    if (config.listen_port) status_.listen_port = *config.listen_port;
    if (config.fwmark) status_.fwmark = *config.fwmark;
    if (config.replace_peers) {
      std::erase_if(status_.peers, [&](const wireguard::PeerStatus& p) {
        return std::none_of(config.peers.begin(), config.peers.end(),
                            [&](const wireguard::PeerConfig& c) { return c.public_key == p.public_key; });
      });
    }
    for (const auto& c : config.peers) {
      auto it = std::find_if(status_.peers.begin(), status_.peers.end(),
                             [&](const wireguard::PeerStatus& p) { return p.public_key == c.public_key; });
      if (c.remove) {
        if (it != status_.peers.end()) status_.peers.erase(it);
        continue;
      }
      if (it == status_.peers.end()) {
        status_.peers.push_back({.public_key = c.public_key});
        it = status_.peers.end() - 1;
      }
      if (c.endpoint) it->endpoint = c.endpoint;
      if (c.persistent_keepalive) it->persistent_keepalive = *c.persistent_keepalive;
      if (c.replace_allowed_ips) it->allowed_ips.clear();
      for (const auto& ip : c.allowed_ips) {
        if (std::find(it->allowed_ips.begin(), it->allowed_ips.end(), ip) == it->allowed_ips.end()) {
          it->allowed_ips.push_back(ip);
        }
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<wireguard::DeviceStatus> Get() override { return status_; }

  // Every Set that was applied, in order.
  const std::vector<wireguard::DeviceConfig>& sets() const { return sets_; }
  // The peer with `key`, or nullptr.
  wireguard::PeerStatus* peer(const wireguard::Key& key) {
    for (auto& p : status_.peers) {
      if (p.public_key == key) return &p;
    }
    return nullptr;
  }
  // What WireGuard itself does to a peer: roams to where its packets come from, counts.
  wireguard::DeviceStatus& status() { return status_; }
  void FailNextSet() { fail_next_ = true; }

 private:
  wireguard::DeviceStatus status_;
  std::vector<wireguard::DeviceConfig> sets_;
  bool fail_next_ = false;
};

}  // namespace weft::testing

#endif  // WEFT_LIB_TESTING_FAKE_DEVICE_H_
