// The kernel side of a pod attachment: veth pair, addresses, routes, neighbours.
#ifndef WEFT_CNI_PLUGIN_POD_WIRING_H_
#define WEFT_CNI_PLUGIN_POD_WIRING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/ipam/pool.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"
#include "lib/sys/netns.h"

namespace weft::cni {

struct PodWiring {
  std::string network;
  ipam::Attachment attachment;  // container ID and the pod-side interface name
  std::vector<net::IpAddress> pod_ips;  // one per family
  int mtu = 0;
};

// What Wire() made, for the result.
struct WiredPod {
  std::string host_ifname;
  net::MacAddress host_mac;
  net::MacAddress pod_mac;
};

// Creates the veth pair with the pod end directly in `pod_ns` under its final name, and
// configures both ends:
//   pod:  <ip>/32 and <ip6>/128, default routes via 169.254.1.1 / fe80::1 with permanent
//         neighbour entries for them (no ARP/NDP needed for the gateway);
//   host: 169.254.1.1/32 and fe80::1/64 (so the pod can ping its gateway), a /32 and
//         /128 route to the pod, a permanent neighbour entry for the pod.
// A stale host end of the same attachment (a crashed earlier ADD) is replaced. On error
// the caller removes the host end with Unwire().
absl::StatusOr<WiredPod> Wire(net::NlSocket& host, const sys::Netns& pod_ns,
                              const PodWiring& w);

// Deletes the attachment's host end, which takes the pod end and every route and
// neighbour on them with it. OK if it does not exist. Takes as long as the kernel's
// netdev unregistration (RCU grace periods: 15-30 ms here).
absl::Status Unwire(net::NlSocket& host, const ipam::Attachment& a);

// Cuts the pod off at once: the host end goes down, which removes every route through
// it, so nothing reaches the pod or leaves it. OK if the link does not exist. Returns
// whether there is a link left to delete.
absl::StatusOr<bool> Isolate(net::NlSocket& host, const ipam::Attachment& a);

// Deletes the attachment's host end from a detached background process, so the caller
// does not wait out the kernel's unregistration. The process inherits every open file
// description except stdio, so locks the caller holds stay held until the deletion is
// done; it survives the caller's exit. GC deletes the link if this process is killed.
void UnwireInBackground(const ipam::Attachment& a);

// Verifies that the wiring of `w` is in place (CHECK). Returns a status carrying CNI code
// 102 naming the first difference found.
absl::Status Inspect(net::NlSocket& host, const sys::Netns& pod_ns, const PodWiring& w);

// Host settings the data path needs (IP forwarding for the families in use).
absl::Status EnsureHostForwarding(bool v4, bool v6);

}  // namespace weft::cni

#endif  // WEFT_CNI_PLUGIN_POD_WIRING_H_
