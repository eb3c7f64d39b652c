#include "tests/lab/nat_lab.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "lib/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace weft::lab {
namespace {

net::IpAddress Ip(const std::string& s) { return *net::IpAddress::Parse(s); }

}  // namespace

absl::StatusOr<NatKind> ParseNatKind(absl::string_view s) {
  if (s == "none") return NatKind::kNone;
  if (s == "easy") return NatKind::kEasy;
  if (s == "hard") return NatKind::kHard;
  if (s == "cone") return NatKind::kCone;
  if (s == "udp-blocked") return NatKind::kUdpBlocked;
  if (s == "easy-open") return NatKind::kEasyOpen;
  if (s == "cgnat") return NatKind::kCgnat;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown NAT kind \"", s, "\" (none, easy, cone, hard, udp-blocked, easy-open, cgnat)"));
}

absl::string_view NatKindName(NatKind k) {
  switch (k) {
    case NatKind::kNone: return "none";
    case NatKind::kEasy: return "easy";
    case NatKind::kHard: return "hard";
    case NatKind::kCone: return "cone";
    case NatKind::kUdpBlocked: return "udp-blocked";
    case NatKind::kEasyOpen: return "easy-open";
    case NatKind::kCgnat: return "cgnat";
  }
  return "?";
}

absl::StatusOr<LabSpec> ParseLabSpec(absl::string_view text) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("lab topology is not a JSON object");
  LabSpec spec;
  if (auto it = j.find("stun_servers"); it != j.end()) {
    if (!it->is_number_integer() || *it < 1 || *it > 8) return absl::InvalidArgumentError("stun_servers: 1..8");
    spec.stun_servers = *it;
  }
  auto sites = j.find("sites");
  if (sites == j.end() || !sites->is_array() || sites->empty() || sites->size() > 9) {
    return absl::InvalidArgumentError("sites: a list of 1..9 sites");
  }
  for (const auto& s : *sites) {
    if (!s.is_object() || !s.contains("name") || !s["name"].is_string() || !s.contains("nodes") || !s["nodes"].is_array()) {
      return absl::InvalidArgumentError("each site needs a name and a list of nodes");
    }
    SiteSpec site{s["name"].get<std::string>()};
    ASSIGN_OR_RETURN(site.nat, ParseNatKind(s.value("nat", "easy")));
    site.node_snat_random = s.value("node_snat", "") == "random-fully";
    site.wan_mtu = s.value("wan_mtu", 0);
    const std::string v6 = s.value("ipv6", "none");
    if (v6 != "none" && v6 != "global" && v6 != "global-udp-blocked" && v6 != "only" && v6 != "npt") {
      return absl::InvalidArgumentError("ipv6: none, global, global-udp-blocked, only or npt");
    }
    site.ipv6_npt = v6 == "npt";
    if (site.ipv6_npt && (site.nat == NatKind::kNone || site.nat == NatKind::kCgnat)) {
      return absl::InvalidArgumentError("ipv6: npt needs a router of its own (not none, not cgnat)");
    }
    site.ipv6 = v6 != "none";
    site.ipv4 = v6 != "only";
    site.ipv6_udp_blocked = v6 == "global-udp-blocked";
    if (site.ipv6_udp_blocked && site.nat == NatKind::kNone) {
      return absl::InvalidArgumentError("ipv6: global-udp-blocked needs a router (its firewall)");
    }
    if (site.wan_mtu != 0 && (site.wan_mtu < 576 || site.wan_mtu > 1500)) {
      return absl::InvalidArgumentError("wan_mtu: 576..1500");
    }
    if (site.wan_mtu != 0 && site.nat == NatKind::kNone) return absl::InvalidArgumentError("wan_mtu needs a router");
    if (site.wan_mtu != 0 && site.nat == NatKind::kCgnat) return absl::InvalidArgumentError("wan_mtu with cgnat is not built");
    for (const auto& n : s["nodes"]) {
      if (!n.is_string()) return absl::InvalidArgumentError("node names are strings");
      site.nodes.push_back(n.get<std::string>());
    }
    if (site.nodes.empty() || site.nodes.size() > 9) return absl::InvalidArgumentError("a site has 1..9 nodes");
    spec.sites.push_back(std::move(site));
  }
  return spec;
}

absl::StatusOr<std::unique_ptr<NatLab>> NatLab::Create(const LabSpec& spec) {
  std::unique_ptr<NatLab> lab(new NatLab());
  // On any failure the destructor removes what was made so far.
  RETURN_IF_ERROR(lab->Build(spec));
  return lab;
}

NatLab::~NatLab() {
  for (pid_t pid : coturn_) kill(pid, SIGTERM);
  for (pid_t pid : coturn_) {
    for (int i = 0; i < 200 && waitpid(pid, nullptr, WNOHANG) == 0; ++i) usleep(10000);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ns_.clear();
  if (!tmp_dir_.empty()) std::filesystem::remove_all(tmp_dir_);
}

const testing::TestNetns& NatLab::ns(const std::string& role) const { return *ns_.at(role); }
net::IpAddress NatLab::NodeIp(const std::string& node) const { return node_ip_.at(node); }
net::IpAddress NatLab::WanIp(const std::string& site) const { return wan_ip_.at(site); }
net::IpAddress NatLab::HostIp() const { return Ip("198.51.100.200"); }
net::IpAddress NatLab::HostIp6() const { return Ip("2001:db8::200"); }
std::optional<net::IpAddress> NatLab::NodeIp6(const std::string& node) const {
  if (auto it = node_ip6_.find(node); it != node_ip6_.end()) return it->second;
  return std::nullopt;
}
std::vector<net::Endpoint> NatLab::StunTargets() const { return stun_; }
net::Endpoint NatLab::StunTarget6() const { return {Ip("2001:db8::11"), 3478}; }

absl::Status NatLab::Run(const std::string& role, const std::string& cmd) {
  std::string out;
  int rc = ns_.at(role)->Exec(cmd, &out);
  if (rc != 0) return absl::InternalError(absl::StrCat("lab: in ", role, ": `", cmd, "` failed (", rc, "): ", out));
  return absl::OkStatus();
}

absl::Status NatLab::Veth(const std::string& ns_a, const std::string& if_a, const std::string& ns_b,
                          const std::string& if_b) {
  std::string cmd = absl::StrCat("ip link add ", if_a, " netns ", ns_.at(ns_a)->name(), " type veth peer name ", if_b,
                                 " netns ", ns_.at(ns_b)->name());
  if (system(cmd.c_str()) != 0) return absl::InternalError(absl::StrCat("lab: ", cmd, " failed"));
  RETURN_IF_ERROR(Run(ns_a, absl::StrCat("ip link set ", if_a, " up")));
  return Run(ns_b, absl::StrCat("ip link set ", if_b, " up"));
}

absl::Status NatLab::ApplyNat(const std::string& site, NatKind kind) {
  std::string rules = "table ip weftlab {\n"
                      "  chain lab_nat { type nat hook postrouting priority srcnat; policy accept;\n";
  if (kind == NatKind::kCone) {
    // One static mapping for the WireGuard port of the first node, both ways.
    const std::string node = cone_node_.at(site).ToString(), wan = wan_ip_.at(site).ToString();
    absl::StrAppend(&rules, "    oifname \"wan0\" ip saddr ", node, " udp sport 51820 snat to ", wan, ":51820\n");
  }
  absl::StrAppend(&rules, "    oifname \"wan0\" masquerade", kind == NatKind::kHard ? " random,fully-random" : "", "\n  }\n");
  if (kind == NatKind::kCone) {
    absl::StrAppend(&rules, "  chain lab_dnat { type nat hook prerouting priority dstnat; policy accept;\n",
                    "    iifname \"wan0\" udp dport 51820 dnat to ", cone_node_.at(site).ToString(), ":51820\n  }\n");
  }
  // A lowered WAN drops what does not fit and, like so many middleboxes, tells nobody:
  // ICMP "fragmentation needed" is dropped, made here or passing through.
  const char* no_ptb = wan_mtu_.contains(site) ? "    icmp type destination-unreachable icmp code frag-needed drop\n" : "";
  absl::StrAppend(&rules, "  chain lab_filter { type filter hook forward priority filter; policy accept;\n",
                  kind == NatKind::kUdpBlocked ? "    meta l4proto udp drop\n" : "", no_ptb, "  }\n");
  absl::StrAppend(&rules, "  chain lab_output { type filter hook output priority filter; policy accept;\n", no_ptb,
                  "  }\n");
  // Like every real home or cloud router: nothing unsolicited from the WAN reaches the
  // router itself. Without this, a peer's first packet to the router's public port makes
  // conntrack bind that port to the router (seeds/004's collision), and the node behind
  // it can no longer keep its port for that peer.
  absl::StrAppend(&rules, "  chain lab_input { type filter hook input priority filter; policy accept;\n",
                  kind == NatKind::kEasyOpen ? "" : "    iifname \"wan0\" ct state new drop\n", "  }\n}\n");
  return LoadTable("r-" + site, "ip weftlab", rules);
}

absl::Status NatLab::LoadTable(const std::string& role, const std::string& table, const std::string& rules) {
  const std::string file = absl::StrCat(tmp_dir_, "/", role, ".", absl::StrReplaceAll(table, {{" ", "-"}}), ".nft");
  FILE* f = fopen(file.c_str(), "w");
  if (f == nullptr) return absl::InternalError("lab: cannot write nft rules");
  // One transaction: create-if-missing, delete, load. A router's rules never have a gap
  // (two separate commands dropped a packet in flight between them).
  fputs(absl::StrCat("table ", table, "\ndelete table ", table, "\n").c_str(), f);
  fputs(rules.c_str(), f);
  fclose(f);
  return Run(role, absl::StrCat("nft -f ", file));
}

absl::Status NatLab::ApplyFirewall6(const std::string& site) {
  // Stateful, as IPv6 home and cloud routers are (RFC 6092): the LAN's flows may answer;
  // new flows from the WAN are dropped, ICMPv6 excepted (errors and echo, RFC 4890). A
  // site whose firewall blocks UDP over IPv6 altogether (as many corporate ones do) drops
  // it both ways first.
  const std::string rules = absl::StrCat(
      "table ip6 weftlab6 {\n"
      "  chain lab_filter6 { type filter hook forward priority filter; policy accept;\n",
      ipv6_udp_blocked_.contains(site) ? "    meta l4proto udp drop\n" : "",
      "    ct state established,related accept\n"
      "    iifname \"wan0\" meta l4proto ipv6-icmp accept\n"
      "    iifname \"wan0\" drop\n  }\n"
      "  chain lab_input6 { type filter hook input priority filter; policy accept;\n"
      "    iifname \"wan0\" ct state new meta l4proto != ipv6-icmp drop\n  }\n}\n");
  return LoadTable("r-" + site, "ip6 weftlab6", rules);
}

absl::Status NatLab::Build(const LabSpec& spec) {
  char tmpl[] = "/tmp/weft-lab-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("lab: mkdtemp");
  tmp_dir_ = tmpl;
  // No duplicate address detection in the lab: addresses (link-local ones too, which
  // neighbour discovery needs) are usable at once, not a second or two later.
  auto add_ns = [&](const std::string& role) -> absl::Status {
    ns_[role] = std::make_unique<testing::TestNetns>(role);
    return Run(role, "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0");
  };
  RETURN_IF_ERROR(add_ns("inet"));
  // The internet is a bridge (198.51.100.0/24) and, for routers behind a carrier hop, a
  // router: inet forwards between the bridge and their links (203.0.113.0/24).
  RETURN_IF_ERROR(Run("inet", "ip link add br0 type bridge && ip link set br0 up && "
                              "ip addr add 198.51.100.1/24 dev br0 && sysctl -qw net.ipv4.ip_forward=1 && "
                              "ip addr add 2001:db8::1/64 dev br0 nodad && sysctl -qw net.ipv6.conf.all.forwarding=1"));
  int port_no = 0;
  auto attach = [&](const std::string& role, const std::string& ifname) -> absl::Status {
    const std::string port = absl::StrCat("p", port_no++);
    RETURN_IF_ERROR(Veth(role, ifname, "inet", port));
    RETURN_IF_ERROR(Run("inet", absl::StrCat("ip link set ", port, " master br0")));
    return Run(role, absl::StrCat("ip route add 203.0.113.0/24 via 198.51.100.1 dev ", ifname, " onlink"));
  };
  // An IPv6 address; on the bridge (2001:db8::/64) also the route to the sites' prefixes,
  // which inet routes.
  auto add6 = [&](const std::string& role, const std::string& ifname, const std::string& ip) {
    const bool on_bridge = ip.rfind("2001:db8::", 0) == 0;
    return Run(role, absl::StrCat("ip addr add ", ip, "/64 dev ", ifname, " nodad",
                                  on_bridge ? absl::StrCat(" && ip -6 route add 2001:db8::/32 via 2001:db8::1 dev ", ifname)
                                            : std::string()));
  };

  // STUN servers: real coturn, distinct addresses and ports.
  RETURN_IF_ERROR(add_ns("stun"));
  RETURN_IF_ERROR(attach("stun", "eth0"));
  RETURN_IF_ERROR(add6("stun", "eth0", "2001:db8::11"));
  for (int i = 0; i < spec.stun_servers; ++i) {
    const std::string ip = absl::StrCat("198.51.100.", 11 + i);
    const uint16_t port = static_cast<uint16_t>(3478 + i);
    RETURN_IF_ERROR(Run("stun", absl::StrCat("ip addr add ", ip, "/24 dev eth0")));
    stun_.push_back({Ip(ip), port});
    // The first server also listens on an alternate address, for RFC 5780 tests.
    const std::string alt = "198.51.100.14";
    if (i == 0) RETURN_IF_ERROR(Run("stun", absl::StrCat("ip addr add ", alt, "/24 dev eth0")));
    int fd = open(ns_["stun"]->path().c_str(), O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // nothing outlives a crashed test
      if (setns(fd, CLONE_NEWNET) != 0) _exit(126);
      int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      const std::string p = std::to_string(port), pid_file = absl::StrCat(tmp_dir_, "/turn", i, ".pid");
      std::vector<const char*> args = {"turnserver", "-n", "--no-auth", "-f", "--listening-ip", ip.c_str()};
      if (i == 0) {
        args.push_back("--listening-ip");
        args.push_back(alt.c_str());
        args.push_back("--listening-ip");  // and on the IPv6 internet
        args.push_back("2001:db8::11");
      }
      for (const char* a : {"-p", p.c_str(), "--relay-ip", ip.c_str(), "--no-tls", "--no-dtls", "--no-cli",
                            "--pidfile", pid_file.c_str(), "--log-file", "stdout", "--simple-log"}) {
        args.push_back(a);
      }
      args.push_back(nullptr);
      execvp("turnserver", const_cast<char* const*>(args.data()));
      _exit(127);
    }
    close(fd);
    if (pid < 0) return absl::InternalError("lab: fork coturn");
    coturn_.push_back(pid);
  }

  RETURN_IF_ERROR(add_ns("host"));
  RETURN_IF_ERROR(attach("host", "eth0"));
  RETURN_IF_ERROR(Run("host", "ip addr add 198.51.100.200/24 dev eth0"));
  RETURN_IF_ERROR(add6("host", "eth0", "2001:db8::200"));

  for (size_t i = 0; i < spec.sites.size(); ++i) {
    const SiteSpec& site = spec.sites[i];
    if (site.nat == NatKind::kNone) {
      for (size_t k = 0; k < site.nodes.size(); ++k) {
        const std::string role = "n-" + site.nodes[k];
        RETURN_IF_ERROR(add_ns(role));
        RETURN_IF_ERROR(attach(role, "eth0"));
        const std::string ip = absl::StrCat("198.51.100.", 100 + 10 * i + k);
        if (site.ipv4) {
          RETURN_IF_ERROR(Run(role, absl::StrCat("ip addr add ", ip, "/24 dev eth0")));
          node_ip_[site.nodes[k]] = Ip(ip);
        } else {
          RETURN_IF_ERROR(Run(role, "ip route del 203.0.113.0/24"));  // no IPv4 at all
        }
        if (site.ipv6) {
          const std::string ip6 = absl::StrCat("2001:db8::", 100 + 10 * i + k);
          RETURN_IF_ERROR(add6(role, "eth0", ip6));
          node_ip6_[site.nodes[k]] = Ip(ip6);
        }
      }
      continue;
    }
    const std::string router = "r-" + site.name;
    RETURN_IF_ERROR(add_ns(router));
    std::string wan = absl::StrCat("198.51.100.", 20 + i), wan_len = "/24";
    if (site.nat == NatKind::kCgnat) {
      // Carrier-grade NAT (RFC 6888: endpoint-independent mapping, ports kept where it
      // can): the home router's WAN is an address in the carrier's network (10.100.i.0/24),
      // and the carrier's router masquerades it again to the public address. Unsolicited
      // packets to either router are dropped. IPv6, where given, is routed by the carrier
      // without NAT (2001:db8:100:i::/64 between the two; the home router's firewall).
      const std::string carrier = "g-" + site.name, cnet = absl::StrCat("10.100.", i, ".");
      RETURN_IF_ERROR(add_ns(carrier));
      RETURN_IF_ERROR(attach(carrier, "wan0"));
      RETURN_IF_ERROR(Run(carrier, absl::StrCat("ip addr add ", wan, "/24 dev wan0 && sysctl -qw net.ipv4.ip_forward=1")));
      RETURN_IF_ERROR(Veth(router, "wan0", carrier, "cpe0"));
      RETURN_IF_ERROR(Run(carrier, absl::StrCat("ip addr add ", cnet, "1/24 dev cpe0")));
      RETURN_IF_ERROR(Run(router, absl::StrCat("ip addr add ", cnet, "2/24 dev wan0 && ip route add default via ", cnet, "1")));
      RETURN_IF_ERROR(LoadTable(carrier, "ip weftlab",
                                "table ip weftlab {\n"
                                "  chain lab_nat { type nat hook postrouting priority srcnat; policy accept;\n"
                                "    oifname \"wan0\" masquerade\n  }\n"
                                "  chain lab_input { type filter hook input priority filter; policy accept;\n"
                                "    iifname \"wan0\" ct state new drop\n  }\n}\n"));
      if (site.ipv6) {
        const std::string link6 = absl::StrCat("2001:db8:100:", i, "::"), lan6 = absl::StrCat("2001:db8:", i + 1, "::");
        RETURN_IF_ERROR(add6(carrier, "wan0", absl::StrCat("2001:db8::", 20 + i)));
        RETURN_IF_ERROR(add6(carrier, "cpe0", link6 + "1"));
        RETURN_IF_ERROR(Run(carrier, absl::StrCat("sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 route add ", lan6,
                                                  "/64 via ", link6, "2 dev cpe0")));
        RETURN_IF_ERROR(add6(router, "wan0", link6 + "2"));
        RETURN_IF_ERROR(Run(router, absl::StrCat("ip -6 route add default via ", link6, "1 dev wan0")));
      }
    } else if (site.nat == NatKind::kEasyOpen || site.wan_mtu > 0) {
      // Behind a carrier hop (a link of its own to inet), as real routers are: there is a
      // router between two NATs, so a punch with a TTL of 2 opens this NAT and dies there.
      // A lowered WAN is such a link too, narrow at both ends (a PPPoE session, a tunnel):
      // what crosses it inbound is fragmented by inet, or dropped when it has DF.
      RETURN_IF_ERROR(Veth(router, "wan0", "inet", absl::StrCat("c", i)));
      const std::string hop = absl::StrCat("203.0.113.", 4 * i + 1);
      wan = absl::StrCat("203.0.113.", 4 * i + 2);
      wan_len = "/30";
      RETURN_IF_ERROR(Run("inet", absl::StrCat("ip addr add ", hop, "/30 dev c", i)));
      RETURN_IF_ERROR(Run(router, absl::StrCat("ip addr add ", wan, "/30 dev wan0 && ip route add default via ", hop)));
    } else {
      RETURN_IF_ERROR(attach(router, "wan0"));
      RETURN_IF_ERROR(Run(router, absl::StrCat("ip addr add ", wan, "/24 dev wan0")));
    }
    wan_ip_[site.name] = Ip(wan);
    wan_len_[site.name] = wan_len;
    const std::string lan_net = absl::StrCat("10.", i + 1, ".0.");
    RETURN_IF_ERROR(Run(router, absl::StrCat("ip link add lan type bridge && ",
                                             "ip addr add ", lan_net, "1/24 dev lan && ip link set lan up && ",
                                             "sysctl -qw net.ipv4.ip_forward=1")));
    cone_node_[site.name] = Ip(absl::StrCat(lan_net, 2));
    nat_[site.name] = site.nat;
    if (site.wan_mtu > 0) {
      wan_mtu_[site.name] = site.wan_mtu;
      wan_link_[site.name] = absl::StrCat("c", i);
      RETURN_IF_ERROR(SetWanMtu(site.name, site.wan_mtu));  // applies the NAT too (its ICMP rule)
    } else {
      RETURN_IF_ERROR(ApplyNat(site.name, site.nat));
    }
    const std::string lan6 = absl::StrCat("2001:db8:", i + 1, "::"), ula6 = absl::StrCat("fd00:", i + 1, "::");
    if (site.ipv6) {
      if (site.nat == NatKind::kEasyOpen || site.wan_mtu > 0) {
        return absl::InvalidArgumentError("lab: ipv6 on a WAN link of its own (easy-open, wan_mtu) is not built");
      }
      if (site.ipv6_udp_blocked) ipv6_udp_blocked_.insert(site.name);
      const std::string wan6 = absl::StrCat("2001:db8::", 20 + i);  // the carrier's, for cgnat
      if (site.nat != NatKind::kCgnat) RETURN_IF_ERROR(add6(router, "wan0", wan6));
      RETURN_IF_ERROR(add6(router, "lan", (site.ipv6_npt ? ula6 : lan6) + "1"));
      RETURN_IF_ERROR(Run(router, "sysctl -qw net.ipv6.conf.all.forwarding=1"));
      if (site.ipv6_npt) {
        // NPTv6: the LAN's ULA prefix leaves as the site's global one, host part and
        // ports kept (conntrack translates the answers back).
        RETURN_IF_ERROR(LoadTable(router, "ip6 weftlab6nat",
                                  absl::StrCat("table ip6 weftlab6nat {\n"
                                               "  chain lab_npt { type nat hook postrouting priority srcnat; policy accept;\n"
                                               "    oifname \"wan0\" snat ip6 prefix to ip6 saddr map { ",
                                               ula6, "/64 : ", lan6, "/64 }\n  }\n}\n")));
      }
      RETURN_IF_ERROR(Run("inet", absl::StrCat("ip -6 route add ", lan6, "/64 via ", wan6, " dev br0")));
      RETURN_IF_ERROR(ApplyFirewall6(site.name));
    }
    for (size_t k = 0; k < site.nodes.size(); ++k) {
      const std::string role = "n-" + site.nodes[k];
      RETURN_IF_ERROR(add_ns(role));
      const std::string port = absl::StrCat("n", k);
      RETURN_IF_ERROR(Veth(role, "eth0", router, port));
      RETURN_IF_ERROR(Run(router, absl::StrCat("ip link set ", port, " master lan")));
      const std::string ip = absl::StrCat(lan_net, 2 + k);
      if (site.ipv4) {
        RETURN_IF_ERROR(
            Run(role, absl::StrCat("ip addr add ", ip, "/24 dev eth0 && ip route add default via ", lan_net, "1")));
      }
      if (site.node_snat_random) {
        RETURN_IF_ERROR(Run(role, "nft add table ip nodesnat && nft add chain ip nodesnat post "
                                  "'{ type nat hook postrouting priority srcnat; }' && nft add rule ip nodesnat post "
                                  "oifname eth0 masquerade random,fully-random"));
      }
      if (site.ipv4) node_ip_[site.nodes[k]] = Ip(ip);
      if (site.ipv6) {
        const std::string& net6 = site.ipv6_npt ? ula6 : lan6;
        const std::string ip6 = absl::StrCat(net6, 2 + k);
        RETURN_IF_ERROR(add6(role, "eth0", ip6));
        RETURN_IF_ERROR(Run(role, absl::StrCat("ip -6 route add default via ", net6, "1 dev eth0")));
        node_ip6_[site.nodes[k]] = Ip(ip6);
      }
    }
  }
  // Wait (bounded) until every coturn answers on its port.
  for (const auto& t : stun_) {
    bool up = false;
    for (int i = 0; i < 300 && !up; ++i) {
      std::string out;
      ns_["stun"]->Exec(absl::StrCat("ss -Hlun src ", t.ip.ToString(), ":", t.port), &out);
      up = !out.empty();
      if (!up) usleep(10000);
    }
    if (!up) return absl::UnavailableError(absl::StrCat("lab: coturn on ", t.ToString(), " did not start"));
  }
  return absl::OkStatus();
}

absl::Status NatLab::SetNat(const std::string& site, NatKind kind, std::optional<net::IpAddress> new_wan) {
  const std::string router = "r-" + site;
  if (!ns_.count(router)) return absl::NotFoundError(absl::StrCat("lab: no router for site ", site));
  RETURN_IF_ERROR(ApplyNat(site, kind));
  nat_[site] = kind;
  if (new_wan) {
    // A new uplink: taking wan0 down makes conntrack forget every mapping masqueraded
    // through it (as when a router reconnects), so the new rules apply to all flows.
    RETURN_IF_ERROR(Run(router, absl::StrCat("ip link set wan0 down && ip addr del ", wan_ip_[site].ToString(),
                                             wan_len_[site], " dev wan0 && ip addr add ", new_wan->ToString(),
                                             wan_len_[site], " dev wan0 && ip link set wan0 up")));
    wan_ip_[site] = *new_wan;
  }
  return absl::OkStatus();
}

}  // namespace weft::lab

namespace weft::lab {

absl::Status NatLab::SetWanMtu(const std::string& site, int mtu) {
  const std::string router = "r-" + site;
  if (!ns_.count(router)) return absl::NotFoundError(absl::StrCat("lab: no router for site ", site));
  auto link = wan_link_.find(site);
  if (link == wan_link_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("lab: site ", site, " has no WAN link of its own (give it wan_mtu)"));
  }
  wan_mtu_[site] = mtu;
  RETURN_IF_ERROR(ApplyNat(site, nat_.at(site)));
  // Both ends of the link; inet, like the router, tells nobody that a packet was too big.
  RETURN_IF_ERROR(Run("inet", absl::StrCat("ip link set ", link->second, " mtu ", mtu)));
  RETURN_IF_ERROR(LoadTable("inet", "inet lab_inet_no_ptb",
                            "table inet lab_inet_no_ptb {\n"
                            "  chain out { type filter hook output priority filter; policy accept;\n"
                            "    icmp type destination-unreachable icmp code frag-needed drop\n"
                            "    icmpv6 type packet-too-big drop\n  }\n}\n"));
  return Run(router, absl::StrCat("ip link set wan0 mtu ", mtu));
}

}  // namespace weft::lab
