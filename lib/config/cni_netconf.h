// The network configuration weft-cni reads on stdin (written by weft-agent as a conflist;
// the runtime passes one plugin's part with name, cniVersion and prevResult merged in).
#ifndef WEFT_LIB_CONFIG_CNI_NETCONF_H_
#define WEFT_LIB_CONFIG_CNI_NETCONF_H_

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ipam/pool.h"
#include "lib/net/ip_address.h"
#include "nlohmann/json.hpp"

namespace weft::cni {

// /run is a tmpfs on every systemd host: the store lives exactly as long as the boot,
// like the pods it describes, and an update costs microseconds, not an ext4
// rename-over flush (~0.3 ms measured here).
inline constexpr absl::string_view kDefaultDataDir = "/run/weft/cni";

// Spec versions weft-cni speaks, oldest first. VERSION lists them; a config naming any
// other is refused with code 1.
const std::vector<std::string>& SupportedVersions();
// The version of the newest spec we implement (GC and STATUS need it).
inline constexpr absl::string_view kLatestVersion = "1.1.0";

// Compares two "x.y.z" versions; unparsable parts compare as 0.
int CompareVersions(absl::string_view a, absl::string_view b);

struct CniNetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  // At most one per family; at least one. Pods get one address from each.
  std::vector<net::IpPrefix> pod_cidrs;
  int mtu = 0;  // 0: leave the kernel default (1500)
  std::string data_dir{kDefaultDataDir};
  // The previous plugin's (ADD) or the ADD's (CHECK, DEL) result, as given.
  std::optional<nlohmann::json> prev_result;
  // GC: the attachments still in use ("cni.dev/valid-attachments").
  std::optional<std::vector<ipam::Attachment>> valid_attachments;
};

// Parses and validates. Errors carry their CNI code (see cni_error.h): 6 for bytes that
// are not a JSON object, 1 for an unsupported cniVersion, 7 for anything else wrong
// (missing name, bad CIDR, two CIDRs of one family, MTU out of range, ...). Never throws.
absl::StatusOr<CniNetConf> ParseCniNetConf(absl::string_view json_text);

}  // namespace weft::cni

#endif  // WEFT_LIB_CONFIG_CNI_NETCONF_H_
