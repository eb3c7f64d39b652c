// The NAT prober against real NATs in the lab (root): one row per NAT kind. The probe is
// sent from the WireGuard port while a real wireguard-go owns it.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lib/nat/nat_monitor.h"
#include "lib/nat/port_probe.h"
#include "lib/sys/netns.h"
#include "lib/testing/status_matchers.h"
#include "lib/wireguard/uapi.h"
#include "lib/wireguard/wireguard_go.h"
#include "tests/lab/nat_lab.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go";  // besides root

using std::chrono::milliseconds;
using wireguard::DeviceConfig;
using wireguard::Key;
using wireguard::PeerConfig;
using wireguard::UapiDevice;
using wireguard::WireGuardGo;

constexpr uint16_t kWgPort = 51820;

class NatLabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::MissingForRootTest(kTools).empty()) return;
    auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
        {"name": "pub", "nat": "none", "nodes": ["pub1"]},
        {"name": "easy", "nat": "easy", "nodes": ["easy1"]},
        {"name": "hard", "nat": "hard", "nodes": ["hard1"]},
        {"name": "blocked", "nat": "udp-blocked", "nodes": ["blocked1"]},
        {"name": "swap", "nat": "easy", "nodes": ["swap1"]},
        {"name": "cone", "nat": "cone", "nodes": ["cone1"]},
        {"name": "mobile", "nat": "cgnat", "nodes": ["cg1"]}]})");
    auto lab = NatLab::Create(*spec);
    if (!lab.ok()) {
      setup_error_ = new std::string(lab.status().ToString());
      return;
    }
    lab_ = lab->release();
  }
  static void TearDownTestSuite() {
    for (auto& [k, v] : *wgs_) delete v;
    wgs_->clear();
    delete lab_;
    lab_ = nullptr;
  }
  void SetUp() override {
    if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
    if (setup_error_ != nullptr) FAIL() << *setup_error_;
  }

  // Starts wireguard-go listening on kWgPort in `role`'s namespace (once per role).
  static UapiDevice StartWg(const std::string& role, const Key& priv) {
    const std::string name = "wl" + std::to_string(getpid() % 100000) + role.substr(2, 4);
    if (!wgs_->count(role)) {
      int fd = open(lab_->ns(role).path().c_str(), O_RDONLY | O_CLOEXEC);
      auto wg = WireGuardGo::Start(name, {.netns_fd = fd, .die_with_parent = true});
      close(fd);
      EXPECT_THAT(wg, testing::IsOk());
      if (wg.ok()) (*wgs_)[role] = new WireGuardGo(*std::move(wg));
    }
    UapiDevice dev(name);
    EXPECT_THAT(dev.Set(DeviceConfig{.private_key = priv, .listen_port = kWgPort}), testing::IsOk());
    return dev;
  }

  static nat::PortProbeReport Probe(const std::string& node) {
    auto ns = sys::Netns::Open(lab_->ns("n-" + node).path());
    absl::StatusOr<nat::PortProbeReport> report = absl::UnknownError("not run");
    EXPECT_THAT(sys::RunInNetns(*ns, [&] {
      report = nat::ProbePort(kWgPort, lab_->StunTargets(), {lab_->NodeIp(node)});
      return report.status();
    }), testing::IsOk());
    return report.ok() ? *report : nat::PortProbeReport{};
  }

  static NatLab* lab_;
  static std::string* setup_error_;
  static std::map<std::string, WireGuardGo*>* wgs_;
};
NatLab* NatLabTest::lab_ = nullptr;
std::string* NatLabTest::setup_error_ = nullptr;
std::map<std::string, WireGuardGo*>* NatLabTest::wgs_ = new std::map<std::string, WireGuardGo*>();

TEST_F(NatLabTest, PublicNodeHasNoNat) {
  StartWg("n-pub1", *Key::GeneratePrivate());
  auto r = Probe("pub1");
  EXPECT_EQ(r.verdict.mapping, nat::Mapping::kNone) << r.verdict.reason;
  ASSERT_TRUE(r.verdict.reflexive.has_value());
  EXPECT_EQ(r.verdict.reflexive->ToString(), lab_->NodeIp("pub1").ToString() + ":51820");
  EXPECT_EQ(r.verdict.filtering, nat::Filtering::kEndpointIndependent) << "nothing filters a public node";
}

// Filtering, told by RFC 5780 CHANGE-REQUESTs to the coturn that has an alternate
// address: conntrack lets in only what answers the exact address and port we sent to.
TEST_F(NatLabTest, EasyNatFiltersByAddressAndPort) {
  StartWg("n-easy1", *Key::GeneratePrivate());
  auto r = Probe("easy1");
  EXPECT_EQ(r.verdict.filtering, nat::Filtering::kAddressAndPortDependent) << r.verdict.reason;
  EXPECT_EQ(r.observations.answered_from_other_address, std::optional<bool>(false));
  EXPECT_EQ(r.observations.answered_from_other_port, std::optional<bool>(false));
}

// Behind a home NAT behind a carrier's (RFC 6888): both keep the port, so the verdict is
// the carrier's public address and the node's own port, endpoint-independent, filtered.
TEST_F(NatLabTest, CarrierGradeNatIsTwoEasyNatsInARow) {
  StartWg("n-cg1", *Key::GeneratePrivate());
  auto r = Probe("cg1");
  EXPECT_EQ(r.verdict.mapping, nat::Mapping::kEndpointIndependent) << r.verdict.reason;
  ASSERT_TRUE(r.verdict.reflexive.has_value()) << r.verdict.reason;
  EXPECT_EQ(r.verdict.reflexive->ToString(), lab_->WanIp("mobile").ToString() + ":51820");
  EXPECT_TRUE(absl::StartsWith(lab_->WanIp("mobile").ToString(), "198.51.100.")) << "the carrier's public address";
  EXPECT_EQ(r.verdict.filtering, nat::Filtering::kAddressAndPortDependent) << r.verdict.reason;
  // The home router's own WAN address is the carrier's inside one.
  std::string addr;
  lab_->ns("r-mobile").Exec("ip -4 -o addr show dev wan0", &addr);
  EXPECT_TRUE(absl::StrContains(addr, " 10.100.")) << addr;
}

TEST_F(NatLabTest, ConeNatIsEasyAndFiltersNothing) {
  StartWg("n-cone1", *Key::GeneratePrivate());
  auto r = Probe("cone1");
  EXPECT_EQ(r.verdict.mapping, nat::Mapping::kEndpointIndependent) << r.verdict.reason;
  EXPECT_EQ(r.verdict.filtering, nat::Filtering::kEndpointIndependent) << r.verdict.reason;
  EXPECT_EQ(r.verdict.reflexive->ToString(), lab_->WanIp("cone").ToString() + ":51820");
}

// The reflexive endpoint reported for the WireGuard port is the one a WireGuard peer on
// the internet sees the node's handshakes come from.
TEST_F(NatLabTest, EasyNatReflexivePortIsWhatAWireGuardPeerSees) {
  const Key node_key = *Key::GeneratePrivate(), host_key = *Key::GeneratePrivate();
  UapiDevice host = StartWg("host", host_key);
  UapiDevice node = StartWg("n-easy1", node_key);
  WEFT_ASSERT_OK(host.Set(DeviceConfig{.peers = {PeerConfig{.public_key = *Key::PublicFrom(node_key),
                                                            .allowed_ips = {*net::IpPrefix::Parse("10.200.0.1/32")}}}}));
  WEFT_ASSERT_OK(node.Set(DeviceConfig{.peers = {PeerConfig{.public_key = *Key::PublicFrom(host_key),
                                                            .endpoint = net::Endpoint{lab_->HostIp(), kWgPort},
                                                            .persistent_keepalive = 1,
                                                            .allowed_ips = {*net::IpPrefix::Parse("10.200.0.2/32")}}}}));
  auto r = Probe("easy1");
  EXPECT_EQ(r.verdict.mapping, nat::Mapping::kEndpointIndependent) << r.verdict.reason;
  EXPECT_TRUE(r.verdict.port_preserved);
  ASSERT_TRUE(r.verdict.reflexive.has_value()) << r.verdict.reason;
  EXPECT_EQ(r.verdict.reflexive->ip, lab_->WanIp("easy"));
  // A plain Linux masquerade does not hairpin: the request to our own public endpoint
  // ends at the router.
  EXPECT_EQ(r.verdict.hairpin, std::optional<bool>(false));

  std::optional<net::Endpoint> seen;
  for (int i = 0; i < 100 && !seen; ++i) {  // bounded: 5 s
    auto st = host.Get();
    if (st.ok() && !st->peers.empty() && st->peers[0].endpoint) seen = st->peers[0].endpoint;
    if (!seen) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(seen.has_value()) << "the internet-side peer never heard from the node";
  EXPECT_EQ(*seen, *r.verdict.reflexive);
}

TEST_F(NatLabTest, HardNatIsEndpointDependentNeverEasy) {
  StartWg("n-hard1", *Key::GeneratePrivate());
  for (int round = 0; round < 3; ++round) {
    auto r = Probe("hard1");
    EXPECT_EQ(r.verdict.mapping, nat::Mapping::kEndpointDependent) << r.verdict.reason;
    EXPECT_EQ(r.verdict.answered, 3);
  }
}

TEST_F(NatLabTest, UdpBlockedIsReportedWithinThreeSeconds) {
  StartWg("n-blocked1", *Key::GeneratePrivate());
  auto r = Probe("blocked1");
  EXPECT_TRUE(r.verdict.udp_blocked) << r.verdict.reason;
  EXPECT_LT(r.took, milliseconds(3000));
}

TEST_F(NatLabTest, WeftctlNetcheckReportsTheWireGuardPortsMapping) {
  StartWg("n-easy1", *Key::GeneratePrivate());
  std::string cmd = std::string(WEFTCTL_BINARY) + " netcheck --netns " + lab_->ns("n-easy1").path();
  for (const auto& t : lab_->StunTargets()) cmd += " --stun " + t.ToString();
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("easy NAT (endpoint-independent mapping), port preserved"), std::string::npos) << out;
  EXPECT_NE(out.find("reflexive:  " + lab_->WanIp("easy").ToString() + ":51820"), std::string::npos) << out;
  EXPECT_NE(out.find("3 of 3 answered"), std::string::npos) << out;
}

// The router in front of a node turns from easy to hard NAT and changes its public
// address while the monitor runs: the new verdict is out within 5 s.
TEST_F(NatLabTest, AChangeFromEasyToHardIsReportedWithinFiveSeconds) {
  StartWg("n-swap1", *Key::GeneratePrivate());
  auto ns = sys::Netns::Open(lab_->ns("n-swap1").path());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::chrono::steady_clock::time_point, nat::Verdict>> changes;
  // jthread: on any exit from this test the monitor is stopped and joined.
  std::jthread monitor([&](std::stop_token stop) {
    absl::Status s = sys::RunInNetns(*ns, [&] {
      return nat::RunNatMonitor({.port = kWgPort, .targets = lab_->StunTargets(), .interval = milliseconds(1000)},
                                [&](const nat::PortProbeReport& r, const std::optional<nat::Verdict>&, bool changed) {
                                  if (!changed) return;
                                  std::lock_guard<std::mutex> l(mu);
                                  changes.push_back({std::chrono::steady_clock::now(), r.verdict});
                                  cv.notify_all();
                                },
                                stop);
    });
    EXPECT_THAT(s, testing::IsOk());
  });
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(5), [&] { return !changes.empty(); }));
    EXPECT_EQ(changes[0].second.mapping, nat::Mapping::kEndpointIndependent) << changes[0].second.reason;
  }
  const auto swapped = std::chrono::steady_clock::now();
  WEFT_ASSERT_OK(lab_->SetNat("swap", NatKind::kHard, *net::IpAddress::Parse("198.51.100.40")));
  {
    std::unique_lock<std::mutex> l(mu);
    const bool seen = cv.wait_for(l, std::chrono::seconds(8), [&] {
      return changes.size() > 1 && changes.back().second.mapping == nat::Mapping::kEndpointDependent;
    });
    std::string history;
    for (const auto& c : changes) history += "\n  " + c.second.reason;
    ASSERT_TRUE(seen) << "no hard verdict after the swap; verdicts:" << history;
    const auto took = std::chrono::duration_cast<milliseconds>(changes.back().first - swapped);
    RecordProperty("detect_ms", static_cast<int>(took.count()));
    EXPECT_LT(took, milliseconds(5000));
  }
}

}  // namespace
}  // namespace weft::lab
