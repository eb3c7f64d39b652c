// The NAT lab: network namespaces standing in for the internet, STUN servers (real
// coturn), NAT routers of several kinds, nodes behind them, and a plain internet host.
//
//   internet (bridge, 198.51.100.0/24)
//     ├── stun:  198.51.100.11:3478, .12:3479, .13:3480 (three coturn, distinct IPs and ports;
//     │          the first also on .14, so it answers RFC 5780 CHANGE-REQUESTs)
//     ├── host:  198.51.100.200 (a peer on the internet side)
//     ├── site "none": nodes directly on the internet, 198.51.100.1xx
//     └── router r-<site> (WAN 198.51.100.2x) ── LAN 10.<i>.0.0/24 ── nodes 10.<i>.0.2, .3, ...
//   inet also routes (198.51.100.1) to routers behind a carrier hop (WAN 203.0.113.4i+2/30)
//
// The IPv6 internet beside it (the documentation prefix, 2001:db8::/32): the bridge is
// 2001:db8::/64 (inet ::1, host ::200, the first STUN server ::11); a site with "ipv6": "global"
// has its nodes on 2001:db8:<i>::/64 (site i, counted from 1; public nodes on the bridge,
// 2001:db8::1xx), routed by inet to the site's router (WAN 2001:db8::2x), whose firewall
// is stateful, as home and cloud IPv6 routers are ("global-udp-blocked": and drops all
// UDP, as many corporate ones do): what the LAN sent may answer, nothing
// else from the WAN gets in (ICMPv6 errors and echo excepted). No NAT for IPv6. "ipv6": "only"
// is "global" without IPv4 on the nodes (an IPv6-only site).
//
// NAT kinds: easy = port-preserving masquerade (conntrack filters by address and port);
// cone = easy plus a static 1:1 mapping of UDP 51820 to the site's first node
// (endpoint-independent filtering for the WireGuard port); hard = masquerade
// random,fully-random; udp-blocked = easy plus a firewall dropping forwarded UDP;
// easy-open = easy without the input firewall below (seeds/004's conntrack collision), its
// WAN behind a carrier hop (203.0.113.4i+2/30, inet routing); cgnat = easy behind a
// carrier's NAT (the home router's WAN in 10.100.i.0/24, the carrier's router masquerading
// that to 198.51.100.20+i; IPv6 routed through it without NAT). Every other router drops
// unsolicited packets from its WAN addressed to itself, as most real ones do. A site's
// "wan_mtu" lowers its router's WAN link and makes it drop ICMP "fragmentation needed". Only lab addresses are used,
// all inside namespaces the lab made; everything is removed by the destructor.
#ifndef WEFT_TESTS_LAB_NAT_LAB_H_
#define WEFT_TESTS_LAB_NAT_LAB_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/endpoint.h"
#include "lib/net/ip_address.h"
#include "tests/netns/netns_harness.h"

namespace weft::lab {

enum class NatKind { kNone, kEasy, kCone, kHard, kUdpBlocked, kEasyOpen, kCgnat };
absl::StatusOr<NatKind> ParseNatKind(absl::string_view s);
absl::string_view NatKindName(NatKind k);

struct SiteSpec {
  std::string name;
  NatKind nat = NatKind::kEasy;
  std::vector<std::string> nodes;
  // Each node of the site randomizes its own outgoing source ports, as kube-proxy's or
  // the AWS VPC CNI's `MASQUERADE --random-fully` does (an nftables rule in the node).
  bool node_snat_random = false;
  // The router's WAN link MTU (0: 1500), as on PPPoE (1492), GCP (1460), VPN and cellular
  // links (1280-1400). Such a router also drops ICMP "fragmentation needed", as so many
  // middleboxes do: larger packets vanish, and nobody is told.
  int wan_mtu = 0;
  // Global IPv6 for the site's nodes beside their IPv4 (behind the router's stateful
  // firewall; public nodes directly on the bridge).
  bool ipv6 = false;
  // "ipv6": "global-udp-blocked": that firewall drops all UDP over IPv6, both ways.
  bool ipv6_udp_blocked = false;
  // "ipv6": "only": the nodes have global IPv6 and no IPv4 at all (no address, no route),
  // as on IPv6-only cloud subnets and mobile networks; the router's IPv4 side is unused.
  bool ipv4 = true;
  // "ipv6": "npt": the nodes have ULAs (fd00:<i>::/64) that the router translates to the
  // site's global prefix (NPTv6, RFC 6296: the prefix only, ports kept), behind the same
  // stateful firewall.
  bool ipv6_npt = false;
};

struct LabSpec {
  int stun_servers = 3;
  std::vector<SiteSpec> sites;
};

// {"stun_servers": 3, "sites": [{"name": "home", "nat": "easy", "nodes": ["n1"]}, ...]}
absl::StatusOr<LabSpec> ParseLabSpec(absl::string_view json);

class NatLab {
 public:
  static absl::StatusOr<std::unique_ptr<NatLab>> Create(const LabSpec& spec);
  ~NatLab();

  // Namespaces by role: "inet", "stun", "host", "r-<site>", "n-<node>".
  const testing::TestNetns& ns(const std::string& role) const;
  bool HasNs(const std::string& role) const { return ns_.contains(role); }
  net::IpAddress NodeIp(const std::string& node) const;
  // False for the nodes of an IPv6-only site ("ipv6": "only").
  bool NodeHasIpv4(const std::string& node) const { return node_ip_.contains(node); }
  net::IpAddress WanIp(const std::string& site) const;
  net::IpAddress HostIp() const;
  // The node's IPv6 address (global; a ULA behind NPTv6), if its site has IPv6; the
  // internet host's.
  std::optional<net::IpAddress> NodeIp6(const std::string& node) const;
  net::IpAddress HostIp6() const;
  std::vector<net::Endpoint> StunTargets() const;
  // The first STUN server's IPv6 address ([2001:db8::11]:3478).
  net::Endpoint StunTarget6() const;

  // Replaces a router's NAT rules. With a new public address it also reconnects the
  // uplink (wan0 down and up: conntrack drops every mapping masqueraded through it), so
  // the new rules apply to every flow; without one, existing flows keep their mapping.
  absl::Status SetNat(const std::string& site, NatKind kind, std::optional<net::IpAddress> new_wan = std::nullopt);
  // The router's WAN MTU changes (a link renegotiated, a tunnel added underneath); from
  // then on it drops ICMP "fragmentation needed" too.
  absl::Status SetWanMtu(const std::string& site, int mtu);

 private:
  NatLab() = default;
  absl::Status Build(const LabSpec& spec);
  absl::Status Run(const std::string& role, const std::string& cmd);
  absl::Status Veth(const std::string& ns_a, const std::string& if_a, const std::string& ns_b, const std::string& if_b);
  absl::Status ApplyNat(const std::string& site, NatKind kind);
  absl::Status ApplyFirewall6(const std::string& site);
  // Replaces nftables `table` ("ip weftlab") in namespace `role` (a router) with `rules`,
  // in one transaction.
  absl::Status LoadTable(const std::string& role, const std::string& table, const std::string& rules);

  std::map<std::string, std::unique_ptr<testing::TestNetns>> ns_;
  std::map<std::string, net::IpAddress> node_ip_;
  std::map<std::string, net::IpAddress> node_ip6_;
  std::map<std::string, net::IpAddress> wan_ip_;
  std::map<std::string, std::string> wan_len_;  // "/24" on the bridge, "/30" behind a carrier hop
  std::map<std::string, net::IpAddress> cone_node_;  // site → node its static mapping serves
  std::map<std::string, NatKind> nat_;               // site → its NAT kind
  std::map<std::string, int> wan_mtu_;               // site → WAN MTU, where lowered
  std::map<std::string, std::string> wan_link_;      // site → inet's end of its own WAN link
  std::set<std::string> ipv6_udp_blocked_;           // sites whose IPv6 firewall drops UDP
  std::vector<net::Endpoint> stun_;
  std::vector<pid_t> coturn_;
  std::string tmp_dir_;
};

}  // namespace weft::lab

#endif  // WEFT_TESTS_LAB_NAT_LAB_H_
