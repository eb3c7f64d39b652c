#include "lib/turn/peer_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace weft::turn {
namespace {

bool InAny(const std::vector<net::IpPrefix>& list, const net::IpAddress& ip) {
  return std::any_of(list.begin(), list.end(), [&ip](const net::IpPrefix& p) { return p.Contains(ip); });
}

}  // namespace

absl::Status PeerPolicy::Check(const net::Endpoint& peer) const {
  const std::string who = peer.port == 0 ? peer.ip.ToString() : peer.ToString();
  absl::string_view kind = net::NonUnicastKind(peer.ip);
  if (!kind.empty() && !(kind == "loopback" && opts_.allow_loopback)) {
    return absl::PermissionDeniedError(absl::StrCat("Forbidden: ", who, " is ", kind));
  }
  for (const net::Endpoint& own : opts_.own) {
    const bool any_ip = net::NonUnicastKind(own.ip) == "unspecified";
    const bool same_ip = own.ip == peer.ip ||
                         (any_ip && own.ip.family() == peer.ip.family() &&
                          std::find(opts_.relay_ips.begin(), opts_.relay_ips.end(), peer.ip) != opts_.relay_ips.end());
    if (same_ip && own.port == peer.port) {
      return absl::PermissionDeniedError(absl::StrCat("Forbidden: ", who, " is this relay's own service"));
    }
  }
  if (InAny(opts_.denied, peer.ip)) return absl::PermissionDeniedError(absl::StrCat("Forbidden: ", who, " is denied"));
  if (InAny(opts_.allowed, peer.ip)) return absl::OkStatus();
  if (std::find(opts_.relay_ips.begin(), opts_.relay_ips.end(), peer.ip) == opts_.relay_ips.end()) {
    return absl::PermissionDeniedError(absl::StrCat("Forbidden: ", who, " is not a relay's address"));
  }
  if (peer.port != 0 && (peer.port < opts_.relay_port_min || peer.port > opts_.relay_port_max)) {
    return absl::PermissionDeniedError(absl::StrCat("Forbidden: ", who, " is not a relayed port"));
  }
  return absl::OkStatus();
}

}  // namespace weft::turn
