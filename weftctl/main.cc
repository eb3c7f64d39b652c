// weftctl: the admin's tool. `weftctl netcheck`: the NAT report of this node's WireGuard
// port. `weftctl explain`: why a node's NAT is what it is and why a pair takes its path.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <httplib.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "lib/flags/flags.h"
#include "weftctl/document.h"
#include "weftctl/explain.h"
#include "lib/nat/nat_monitor.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_addr.h"
#include "lib/sys/netns.h"
#include "weftctl/netcheck_report.h"

namespace {

constexpr char kUsage[] =
    "usage: weftctl netcheck --stun HOST:PORT --stun HOST:PORT --stun HOST:PORT\n"
    "                        [--port 51820] [--netns PATH] [--json]\n"
    "  Probes the NAT mapping of the WireGuard port (while WireGuard keeps it) from three\n"
    "  or more STUN servers with distinct addresses, and prints the verdict.\n"
    "  Needs CAP_NET_RAW. Exit status: 0 direct paths possible, 1 hard NAT or UDP blocked,\n"
    "  2 usage or system error.\n"
    "       weftctl explain [--status http://CONTROLLER:7080/status | --file FILE|-] NODE [PEER]\n"
    "  Why NODE's NAT is what it is (SNAT randomization: evidence and fix) and why NODE->PEER\n"
    "  is direct or relayed, from the controller's /status or from WeftNode objects, JSON or\n"
    "  YAML (kubectl get weftnodes -o json | weftctl explain --file - NODE PEER).\n"
    "       weftctl --version | COMMAND --help\n";

int Usage(const char* why) {
  if (why) std::fprintf(stderr, "weftctl: %s\n", why);
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int ExplainMain(int argc, char** argv) {
  std::string url, file, node, peer;
  weft::flags::FlagSet f("weftctl explain",
                         "weftctl explain (--status http://CONTROLLER:7080/status | --file FILE|-) NODE [PEER]");
  f.String("status", &url, "URL", "the controller's /status (standalone)")
      .String("file", &file, "FILE", "WeftNode objects or /status as JSON or YAML; - for standard input");
  std::vector<std::string> args;
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv, &args, 2)) return *exit_code;
  if (args.empty() || args.size() > 2 || url.empty() == file.empty()) {
    return weft::flags::UsageError(f, "explain needs NODE [PEER] and one of --status, --file");
  }
  node = args[0];
  if (args.size() == 2) peer = args[1];
  std::string text;
  if (!url.empty()) {
    const size_t scheme = url.find("://");
    const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    httplib::Client c(url.substr(0, path));
    c.set_connection_timeout(3, 0);
    c.set_read_timeout(5, 0);
    auto r = c.Get(path == std::string::npos ? "/status" : url.substr(path).c_str());
    if (!r || r->status != 200) {
      std::fprintf(stderr, "weftctl explain: cannot read %s\n", url.c_str());
      return 2;
    }
    text = r->body;
  } else {
    std::stringstream ss;
    if (file == "-") {
      ss << std::cin.rdbuf();
    } else {
      std::ifstream in(file);
      ss << in.rdbuf();
    }
    text = ss.str();
  }
  auto doc = weft::weftctl::ParseDocument(text);
  if (!doc.ok()) {
    std::fprintf(stderr, "weftctl explain: %s\n", std::string(doc.status().message()).c_str());
    return 2;
  }
  auto out = weft::weftctl::Explain(*doc, node, peer);
  if (!out.ok()) {
    std::fprintf(stderr, "weftctl explain: %s\n", std::string(out.status().message()).c_str());
    return 2;
  }
  std::fputs(out->c_str(), stdout);
  return 0;
}

int main(int argc, char** argv) {
  using namespace weft;
  if (argc >= 2 && std::strcmp(argv[1], "explain") == 0) return ExplainMain(argc, argv);
  if (argc >= 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("weftctl %s\n", flags::VersionString().c_str());
    return 0;
  }
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc < 2 || std::strcmp(argv[1], "netcheck") != 0) return Usage(argc < 2 ? nullptr : "unknown command");
  int port = 51820;
  std::vector<std::string> stun;
  std::string netns;
  bool json = false;
  flags::FlagSet f("weftctl netcheck", "weftctl netcheck --stun HOST:PORT --stun HOST:PORT --stun HOST:PORT [flags]");
  f.List("stun", &stun, "HOST:PORT", "STUN servers (3 or more, distinct addresses; [IPv6]:PORT ones give an IPv6 verdict too)")
      .Int("port", &port, 1, 65535, "the WireGuard port to probe")
      .String("netns", &netns, "PATH", "probe from inside that network namespace")
      .Bool("json", &json, "machine-readable report");
  if (auto exit_code = flags::ParseForMain(f, argc, argv, nullptr, 2)) return *exit_code;
  std::vector<net::Endpoint> targets;
  for (const std::string& s : stun) {
    auto e = net::Endpoint::Parse(s);
    if (!e.ok()) return flags::UsageError(f, "--stun: " + std::string(e.status().message()));
    targets.push_back(*e);
  }
  if (targets.size() < 3) {
    return flags::UsageError(f, "give three or more --stun servers (with two, a hard NAT can pass as easy)");
  }

  // Per family: an IPv4 verdict from the IPv4 servers, an IPv6 one from the IPv6 servers
  // (a mapping is per family: a node behind a hard IPv4 NAT often has global IPv6).
  std::vector<net::Endpoint> v4_targets, v6_targets;
  for (const auto& t : targets) (t.ip.is_v4() ? v4_targets : v6_targets).push_back(t);
  std::optional<nat::PortProbeReport> report4, report6;
  auto probe = [&]() -> absl::Status {
    auto nl = net::NlSocket::Open();
    if (!nl.ok()) return nl.status();
    auto ips = net::ListLocalIps(*nl);
    if (!ips.ok()) return ips.status();
    for (auto [family_targets, out] : {std::pair{&v4_targets, &report4}, std::pair{&v6_targets, &report6}}) {
      if (family_targets->empty()) continue;
      auto r = nat::ProbePort(port, *family_targets, *ips);
      if (!r.ok()) return r.status();
      *out = *std::move(r);
    }
    return absl::OkStatus();
  };
  absl::Status s;
  if (netns.empty()) {
    s = probe();
  } else {
    auto ns = sys::Netns::Open(netns);
    s = ns.ok() ? sys::RunInNetns(*ns, probe) : ns.status();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "weftctl netcheck: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::string out;
  if (json) {
    nlohmann::json j = report4 ? weftctl::NetcheckJson(port, *report4) : nlohmann::json::object();
    if (report6) j["ipv6"] = weftctl::NetcheckJson(port, *report6);
    out = j.dump(2) + "\n";
  } else {
    if (report4) out = weftctl::FormatNetcheck(port, *report4);
    if (report6) out += weftctl::FormatNetcheck(port, *report6, "IPv6");
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  const nat::PortProbeReport& primary = report4 ? *report4 : *report6;
  return primary.verdict.udp_blocked || primary.verdict.hard() ? 1 : 0;
}
