// weftctl: the admin's tool. `weftctl netcheck`: the NAT report of this node's WireGuard
// port. `weftctl explain`: why a node's NAT is what it is and why a pair takes its path.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <httplib.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
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
    "  is direct or relayed, from the controller's /status or from WeftNode objects\n"
    "  (kubectl get weftnodes -o json | weftctl explain --file - NODE PEER).\n";

int Usage(const char* why) {
  if (why) std::fprintf(stderr, "weftctl: %s\n", why);
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int ExplainMain(int argc, char** argv) {
  std::string url, file, node, peer;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--status" && i + 1 < argc) url = argv[++i];
    else if (a == "--file" && i + 1 < argc) file = argv[++i];
    else if (node.empty()) node = a;
    else if (peer.empty()) peer = a;
    else return Usage("explain takes NODE [PEER]");
  }
  if (node.empty() || url.empty() == file.empty()) return Usage("explain needs NODE and one of --status, --file");
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
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto out = weft::weftctl::Explain(doc, node, peer);
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
  if (argc < 2 || std::strcmp(argv[1], "netcheck") != 0) return Usage(argc < 2 ? nullptr : "unknown command");
  uint16_t port = 51820;
  std::vector<net::Endpoint> targets;
  std::string netns;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--json") {
      json = true;
    } else if (a == "--stun") {
      const char* v = value();
      auto e = v ? net::Endpoint::Parse(v) : absl::InvalidArgumentError("--stun needs HOST:PORT");
      if (!e.ok()) return Usage(std::string(e.status().message()).c_str());
      targets.push_back(*e);
    } else if (a == "--port") {
      const char* v = value();
      uint32_t p = 0;
      if (!v || !absl::SimpleAtoi(v, &p) || p == 0 || p > 65535) return Usage("--port needs 1..65535");
      port = static_cast<uint16_t>(p);
    } else if (a == "--netns") {
      const char* v = value();
      if (!v) return Usage("--netns needs a path");
      netns = v;
    } else {
      return Usage(("unknown flag " + a).c_str());
    }
  }
  if (targets.size() < 3) return Usage("give three or more --stun servers (with two, a hard NAT can pass as easy)");

  absl::StatusOr<nat::PortProbeReport> report = absl::UnknownError("not run");
  auto probe = [&]() -> absl::Status {
    auto nl = net::NlSocket::Open();
    if (!nl.ok()) return nl.status();
    auto ips = net::ListLocalIps(*nl);
    if (!ips.ok()) return ips.status();
    report = nat::ProbePort(port, targets, *ips);
    return report.status();
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
  const std::string out = json ? weftctl::NetcheckJson(port, *report).dump(2) + "\n" : weftctl::FormatNetcheck(port, *report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return report->verdict.udp_blocked || report->verdict.hard() ? 1 : 0;
}
