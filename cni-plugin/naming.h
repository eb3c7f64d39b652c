// Deterministic names and addresses of a pod's wiring, derived from its attachment.
//
// Everything a DEL or GC must find is derived from (container ID, ifname) alone, so a
// plugin killed mid-ADD leaves nothing that a later call cannot name and remove.
#ifndef WEFT_CNI_PLUGIN_NAMING_H_
#define WEFT_CNI_PLUGIN_NAMING_H_

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "lib/ipam/pool.h"
#include "lib/net/ip_address.h"

namespace weft::cni {

// Host end of the pod's veth: "weft" + 11 hex digits of a hash of the attachment.
std::string HostVethName(const ipam::Attachment& a);
// Whether `name` has the form HostVethName() produces.
bool IsHostVethName(absl::string_view name);
// The pod end's MAC: locally administered, derived from the attachment.
net::MacAddress PodMac(const ipam::Attachment& a);
// Every host end has the same MAC; the pod's gateway entries point at it.
net::MacAddress HostMac();

// Link-local gateways the host end answers for (one per family).
net::IpAddress GatewayV4();  // 169.254.1.1
net::IpAddress GatewayV6();  // fe80::1
const net::IpAddress& GatewayFor(net::Family f);

// IFLA_IFALIAS of the host end: "weft:<network>:<container id>:<ifname>". GC reads it
// back to find the links of attachments that are no longer valid.
std::string HostVethAlias(absl::string_view network, const ipam::Attachment& a);
struct ParsedAlias {
  std::string network;
  ipam::Attachment attachment;
};
std::optional<ParsedAlias> ParseHostVethAlias(absl::string_view alias);

}  // namespace weft::cni

#endif  // WEFT_CNI_PLUGIN_NAMING_H_
