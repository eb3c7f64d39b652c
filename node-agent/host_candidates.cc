#include "node-agent/host_candidates.h"

#include <linux/rtnetlink.h>

namespace weft::agent {

std::vector<net::IpAddress> HostCandidates(const std::vector<net::AddrInfo>& addrs, int uplink_ifindex, int wg_ifindex,
                                           size_t max) {
  std::vector<net::IpAddress> uplink, other;
  for (const auto& a : addrs) {
    if (a.scope != RT_SCOPE_UNIVERSE || !a.prefix.address.is_v4() || a.ifindex == wg_ifindex) continue;
    (a.ifindex == uplink_ifindex ? uplink : other).push_back(a.prefix.address);
  }
  uplink.insert(uplink.end(), other.begin(), other.end());
  if (uplink.size() > max) uplink.resize(max);
  return uplink;
}

}  // namespace weft::agent
