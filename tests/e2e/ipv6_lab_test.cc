// The lab's IPv6 internet (root): sites whose IPv4 is behind a hard NAT but whose nodes
// have global IPv6 behind a stateful firewall, as at so many edge sites. The firewall lets
// answers in and nothing unsolicited; two such sites reach each other directly when both
// send first (a simultaneous open), which real WireGuard does by itself.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"
#include "lib/wireguard/uapi.h"
#include "lib/wireguard/wireguard_go.h"
#include "nlohmann/json.hpp"
#include "tests/lab/nat_lab.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go python3 nft";  // besides root
constexpr uint16_t kWgPort = 51820;

using wireguard::DeviceConfig;
using wireguard::Key;
using wireguard::PeerConfig;
using wireguard::UapiDevice;
using wireguard::WireGuardGo;

// One UDP datagram to [ip]:port, sent from port `sport`; a receiver on `port` that prints
// what came within `seconds` ("" when nothing).
std::string UdpSend(const std::string& ip, int port, int sport) {
  return absl::StrCat("python3 -c \"import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);",
                      "s.bind(('::',", sport, "));s.sendto(b'hello',('", ip, "',", port, "))\"");
}
std::string UdpReceive(int port, double seconds) {
  return absl::StrCat("python3 -c \"import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);",
                      "s.bind(('::',", port, "));s.settimeout(", seconds, ");",
                      "\nimport sys\ntry:\n  d,a=s.recvfrom(100);print(d.decode())\nexcept OSError:\n  pass\"");
}

class Ipv6LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
    auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
        {"name": "pub", "nat": "none", "ipv6": "global", "nodes": ["pub1"]},
        {"name": "edge1", "nat": "hard", "ipv6": "global", "nodes": ["e1"]},
        {"name": "edge2", "nat": "hard", "ipv6": "global", "nodes": ["e2"]},
        {"name": "v4only", "nat": "easy", "nodes": ["v1"]}]})");
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto lab = NatLab::Create(*spec);
    ASSERT_TRUE(lab.ok()) << lab.status();
    lab_ = *std::move(lab);
  }
  // What `to` received on `port` while `from` sent one datagram to it (both in the lab).
  std::string Deliver(const std::string& from, const std::string& to, const std::string& to_ip, int port, int sport) {
    std::string got;
    std::thread rx([&] { lab_->ns(to).Exec(UdpReceive(port, 2), &got); });
    // Until the receiver is bound (a loaded machine starts it late), bounded: 1.5 s.
    for (int i = 0; i < 30; ++i) {
      std::string bound;
      lab_->ns(to).Exec(absl::StrCat("ss -Hlun sport = :", port), &bound);
      if (!bound.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    lab_->ns(from).Exec(UdpSend(to_ip, port, sport));
    rx.join();
    return got;
  }
  std::unique_ptr<NatLab> lab_;
};

TEST_F(Ipv6LabTest, GlobalAddressesAndRoutesWhereTheSpecSaysSo) {
  ASSERT_TRUE(lab_->NodeIp6("e1").has_value());
  EXPECT_EQ(lab_->NodeIp6("e1")->ToString(), "2001:db8:2::2");
  EXPECT_EQ(lab_->NodeIp6("pub1")->ToString(), "2001:db8::100");
  EXPECT_FALSE(lab_->NodeIp6("v1").has_value());
  // Outbound works from behind the firewall; ping (ICMPv6 echo) is let in, as RFC 4890 advises.
  EXPECT_EQ(lab_->ns("n-e1").Exec("ping -6 -c1 -W2 " + lab_->HostIp6().ToString()), 0);
  EXPECT_EQ(lab_->ns("host").Exec("ping -6 -c1 -W2 " + lab_->NodeIp6("e1")->ToString()), 0);
  EXPECT_EQ(lab_->ns("n-e1").Exec("ping -6 -c1 -W2 " + lab_->NodeIp6("pub1")->ToString()), 0);
}

TEST_F(Ipv6LabTest, TheFirewallLetsAnswersInAndNothingUnsolicited) {
  const std::string e1 = lab_->NodeIp6("e1")->ToString(), host = lab_->HostIp6().ToString();
  EXPECT_EQ(Deliver("host", "n-e1", e1, 40000, 40001), "") << "unsolicited UDP crossed the firewall";
  // e1 sends first from 40000 to the host's 40001: the host's answer to that flow gets in.
  EXPECT_EQ(Deliver("n-e1", "host", host, 40001, 40000), "hello\n");
  EXPECT_EQ(Deliver("host", "n-e1", e1, 40000, 40001), "hello\n") << "the answer was dropped";
  // Another port of the host is another flow: still dropped.
  EXPECT_EQ(Deliver("host", "n-e1", e1, 40000, 40002), "");
}

// Two firewalled sites whose IPv4 is behind hard NATs (a relayed pair over IPv4): with
// each other's IPv6 endpoint, both initiating, WireGuard's handshake gets through both
// firewalls (each side's first initiation opens its own) and the tunnel carries traffic.
TEST_F(Ipv6LabTest, WireGuardGoesDirectBetweenTwoFirewalledSitesWhenBothSendFirst) {
  std::vector<std::unique_ptr<WireGuardGo>> wgs;
  std::map<std::string, Key> keys = {{"e1", *Key::GeneratePrivate()}, {"e2", *Key::GeneratePrivate()}};
  std::map<std::string, std::string> inner = {{"e1", "10.201.0.1"}, {"e2", "10.201.0.2"}};
  for (const std::string n : {"e1", "e2"}) {
    const std::string name = absl::StrCat("w6", getpid() % 100000, n);
    int fd = open(lab_->ns("n-" + n).path().c_str(), O_RDONLY | O_CLOEXEC);
    auto wg = WireGuardGo::Start(name, {.netns_fd = fd, .die_with_parent = true});
    close(fd);
    ASSERT_THAT(wg, testing::IsOk());
    wgs.push_back(std::make_unique<WireGuardGo>(*std::move(wg)));
    const std::string peer = n == "e1" ? "e2" : "e1";
    UapiDevice dev(name);
    WEFT_ASSERT_OK(dev.Set(DeviceConfig{
        .private_key = keys[n],
        .listen_port = kWgPort,
        .peers = {PeerConfig{.public_key = *Key::PublicFrom(keys[peer]),
                             .endpoint = net::Endpoint{*lab_->NodeIp6(peer), kWgPort},
                             .persistent_keepalive = 1,
                             .allowed_ips = {*net::IpPrefix::Parse(inner[peer] + "/32")}}}}));
    ASSERT_EQ(lab_->ns("n-" + n).Exec(absl::StrCat("ip addr add ", inner[n], "/32 dev ", name, " && ip link set ", name,
                                                    " up && ip route add ", inner[peer], "/32 dev ", name)),
              0);
  }
  bool up = false;
  for (int i = 0; i < 15 && !up; ++i) {  // bounded: WireGuard retries a handshake every 5 s
    up = lab_->ns("n-e1").Exec("ping -c1 -W1 " + inner["e2"]) == 0;
  }
  EXPECT_TRUE(up) << "no direct IPv6 path through two stateful firewalls";
}

// weftctl netcheck per family: the IPv4 verdict from the IPv4 servers (a hard NAT here),
// the IPv6 one from the IPv6 server (no NAT: the node's own global address), both probed
// from the WireGuard port over raw sockets.
TEST_F(Ipv6LabTest, NetcheckReportsEachFamily) {
  std::string out;
  std::string cmd = absl::StrCat(WEFTCTL_BINARY, " netcheck --json --port 51820");
  for (const auto& t : lab_->StunTargets()) absl::StrAppend(&cmd, " --stun ", t.ToString());
  absl::StrAppend(&cmd, " --stun ", lab_->StunTarget6().ToString(), " 2>&1");
  lab_->ns("n-e1").Exec(cmd, &out);
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j.value("mapping", ""), "endpoint-dependent") << out;
  ASSERT_TRUE(j.contains("ipv6")) << out;
  EXPECT_EQ(j["ipv6"].value("mapping", ""), "none") << out;
  EXPECT_EQ(j["ipv6"].value("reflexive", ""), "[2001:db8:2::2]:51820") << out;
  // The text report has a block per family.
  cmd = absl::StrReplaceAll(cmd, {{" --json", ""}});
  lab_->ns("n-e1").Exec(cmd, &out);
  EXPECT_NE(out.find("WireGuard port 51820 over IPv6"), std::string::npos) << out;
}

}  // namespace
}  // namespace weft::lab
