// The kernel backend: WireGuard's generic netlink family ("wireguard"), through libmnl.
// Message building and parsing are separate from the socket so they can be tested as
// bytes on machines without the module.
#ifndef WEFT_LIB_WIREGUARD_GENL_WIREGUARD_H_
#define WEFT_LIB_WIREGUARD_GENL_WIREGUARD_H_

#include <linux/netlink.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/nl_socket.h"
#include "lib/wireguard/device.h"

namespace weft::wireguard {

// WG_CMD_SET_DEVICE messages for `config`, each at most `max_bytes` long. As
// wireguard-tools does, a peer list (or one peer's allowed IPs) too big for one message
// continues in the next, and only the first message carries REPLACE_PEERS (and only a
// peer's first part its REPLACE_ALLOWEDIPS), so the split changes nothing.
std::vector<std::unique_ptr<net::NlRequest>> BuildSetDevice(uint16_t family_id, const std::string& ifname,
                                                            const DeviceConfig& config,
                                                            size_t max_bytes = 8192);

// Folds one WG_CMD_GET_DEVICE reply message into `status` (a dump of a device with many
// peers comes in several messages; a peer may continue across two).
absl::Status ParseGetDevicePart(const nlmsghdr* nlh, DeviceStatus& status);

class KernelDevice : public Device {
 public:
  // NotFound if the kernel has no WireGuard family (module not loaded).
  static absl::StatusOr<std::unique_ptr<KernelDevice>> Open(const std::string& ifname);
  absl::Status Set(const DeviceConfig& config) override;
  absl::StatusOr<DeviceStatus> Get() override;

 private:
  KernelDevice(net::NlSocket sock, uint16_t family, std::string ifname)
      : sock_(std::move(sock)), family_(family), ifname_(std::move(ifname)) {}
  net::NlSocket sock_;
  uint16_t family_;
  std::string ifname_;
};

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_GENL_WIREGUARD_H_
