// The ADD result, encoded for the requested spec version (pure).
#ifndef WEFT_CNI_PLUGIN_CNI_RESULT_H_
#define WEFT_CNI_PLUGIN_CNI_RESULT_H_

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"
#include "nlohmann/json.hpp"

namespace weft::cni {

struct ResultInterface {
  std::string name;
  net::MacAddress mac;
  int mtu = 0;
  std::string sandbox;  // empty for host-side interfaces
};

struct ResultIp {
  net::IpPrefix address;
  net::IpAddress gateway;
  int interface = 0;  // index into interfaces
};

struct ResultRoute {
  net::IpPrefix dst;
  std::optional<net::IpAddress> gw;
};

struct CniResult {
  std::vector<ResultInterface> interfaces;
  std::vector<ResultIp> ips;
  std::vector<ResultRoute> routes;
};

// Encodes `r` for `version` (0.3.1 and 0.4.0 add "version" to each IP; 1.1.0 adds MTUs).
// When chained after another plugin, `prev` is its result: ours is appended to it and the
// interface indexes of our IPs are shifted to match.
nlohmann::json EncodeResult(const CniResult& r, absl::string_view version,
                            const std::optional<nlohmann::json>& prev);

// The addresses a previous ADD result gives to sandbox interface `ifname`.
// InvalidArgument (CNI code 7) if the result is malformed.
absl::StatusOr<std::vector<net::IpPrefix>> PodAddressesFromResult(const nlohmann::json& result,
                                                                  absl::string_view ifname);

// The error JSON: {"cniVersion", "code", "msg", "details"}.
nlohmann::json EncodeError(absl::string_view version, int code, absl::string_view details);

}  // namespace weft::cni

#endif  // WEFT_CNI_PLUGIN_CNI_RESULT_H_
