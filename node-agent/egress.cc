#include "node-agent/egress.h"

#include <cstdio>
#include <sys/wait.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/net/fragment_band.h"

namespace weft::agent {

absl::StatusOr<std::string> EgressRuleset(const std::vector<net::IpPrefix>& pod_cidrs,
                                          const std::vector<net::IpPrefix>& cluster_cidrs,
                                          const std::string& wg_interface, uint16_t wg_port) {
  bool plain = !wg_interface.empty() && wg_interface.size() < 16;
  for (char c : wg_interface) plain = plain && (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.');
  if (!plain) return absl::InvalidArgumentError(absl::StrCat("interface name \"", wg_interface, "\" is not a plain one"));
  // One table for both families (inet): IPv6 pods masquerade as IPv4 ones do, behind the
  // node's own address, when they leave the cluster.
  std::string out = "table inet weft {\n  chain egress {\n    type nat hook postrouting priority srcnat; policy accept;\n";
  for (const bool v4 : {true, false}) {
    const char* ip = v4 ? "ip" : "ip6";
    std::vector<std::string> cluster;
    for (const auto& c : cluster_cidrs) {
      if (c.address.is_v4() == v4) cluster.push_back(c.ToString());
    }
    for (const auto& p : pod_cidrs) {
      if (p.address.is_v4() != v4) continue;
      absl::StrAppend(&out, "    ", ip, " saddr ", p.ToString());
      if (!cluster.empty()) absl::StrAppend(&out, " ", ip, " daddr != { ", absl::StrJoin(cluster, ", "), " }");
      out += " masquerade\n";
    }
  }
  out += "  }\n";
  // The backstop for path MTU: SYNs into the tunnel carry an MSS that fits the route to
  // the peer (its path MTU, when probing found one below the device's), so TCP never
  // sends what the path would drop, even where a pod ignores ICMP.
  absl::StrAppend(&out, "  chain mss {\n    type filter hook forward priority mangle; policy accept;\n",
                  "    oifname \"", wg_interface, "\" tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu\n",
                  "  }\n");
  // IPv6 pods across a path narrower than 1280: WireGuard's datagrams that carry 1217 to
  // 1280 bytes go without DF, for the narrow link to fragment (wireguard-go sets DF;
  // kernel WireGuard never does). Only DF-only packets (no fragment of something bigger).
  absl::StrAppend(&out, "  chain wireguard_df {\n    type filter hook output priority mangle; policy accept;\n",
                  "    udp sport ", wg_port, " ip frag-off 0x4000 meta length ", net::kFragmentBandIpv4First, "-",
                  net::kFragmentBandIpv4Last, " counter ip frag-off set 0\n  }\n}\n");
  return out;
}

absl::Status ApplyEgress(const std::string& ruleset) {
  // "add table" first so that "delete table" never fails; all of it is one transaction.
  // An older agent's IPv4-only table (`ip weft`) goes too.
  const std::string script = "add table inet weft\ndelete table inet weft\nadd table ip weft\ndelete table ip weft\n" + ruleset;
  FILE* p = popen("nft -f - 2>&1", "w");
  if (p == nullptr) return absl::UnavailableError("cannot run nft");
  fwrite(script.data(), 1, script.size(), p);
  const int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return absl::InternalError("nft refused the egress ruleset");
  return absl::OkStatus();
}

}  // namespace weft::agent
