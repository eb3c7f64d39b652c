#include "node-agent/host_candidates.h"

#include <linux/rtnetlink.h>

#include <algorithm>

namespace weft::agent {

std::vector<net::IpAddress> HostCandidates(const std::vector<net::AddrInfo>& addrs, int uplink_ifindex, int wg_ifindex,
                                           size_t max) {
  std::vector<net::IpAddress> uplink, other, v6;
  for (const auto& a : addrs) {
    if (a.scope != RT_SCOPE_UNIVERSE || a.ifindex == wg_ifindex) continue;
    if (a.prefix.address.is_v4()) {
      (a.ifindex == uplink_ifindex ? uplink : other).push_back(a.prefix.address);
    } else if (a.prefix.address.is_global_v6() && v6.empty()) {
      v6.push_back(a.prefix.address);  // one: peers reach the node there with no NAT between
    }
  }
  uplink.insert(uplink.end(), other.begin(), other.end());
  if (uplink.size() + v6.size() > max) uplink.resize(max - std::min(max, v6.size()));
  uplink.insert(uplink.end(), v6.begin(), v6.end());
  return uplink;
}

}  // namespace weft::agent
