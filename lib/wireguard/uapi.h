// The userspace backend: the cross-platform UAPI text protocol of wireguard-go
// (https://www.wireguard.com/xplatform/), over /var/run/wireguard/<name>.sock.
#ifndef WEFT_LIB_WIREGUARD_UAPI_H_
#define WEFT_LIB_WIREGUARD_UAPI_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/wireguard/device.h"

namespace weft::wireguard {

// "set=1\n" + key=value lines + "\n" (pure).
std::string EncodeUapiSet(const DeviceConfig& config);
// Parses the answer to "get=1\n\n", up to and including "errno=N". A non-zero errno
// becomes an error status (Unknown, naming it); malformed lines are InvalidArgument.
absl::StatusOr<DeviceStatus> ParseUapiGet(absl::string_view text);
// Parses the answer to a set: "errno=N\n\n".
absl::Status ParseUapiSetReply(absl::string_view text);

class UapiDevice : public Device {
 public:
  // The device `name` served by a userspace WireGuard at `socket_dir`/<name>.sock.
  explicit UapiDevice(std::string name, std::string socket_dir = "/var/run/wireguard");

  absl::Status Set(const DeviceConfig& config) override;
  absl::StatusOr<DeviceStatus> Get() override;

 private:
  // Sends `request` and returns the reply up to its terminating blank line.
  absl::StatusOr<std::string> Exchange(absl::string_view request);
  std::string name_;
  std::string socket_path_;
};

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_UAPI_H_
