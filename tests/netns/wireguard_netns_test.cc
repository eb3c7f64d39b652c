// lib/wireguard against the real userspace WireGuard (Debian's wireguard-go): two
// devices configured only through lib/wireguard pass pings; reading back matches what
// was set; 1,000 peers set and read back. Root; lab addresses inside namespaces only.
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <set>

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"
#include "lib/net/rtnl_link.h"
#include "lib/sys/netns.h"
#include "lib/wireguard/backend.h"
#include "lib/wireguard/uapi.h"
#include "lib/wireguard/wireguard_go.h"
#include "tests/netns/netns_harness.h"

namespace weft::testing {
namespace {

using wireguard::DeviceConfig;
using wireguard::Key;
using wireguard::PeerConfig;
using wireguard::UapiDevice;
using wireguard::WireGuardGo;

class WireGuardNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root";
    if (system("command -v wireguard-go >/dev/null") != 0) GTEST_SKIP() << "wireguard-go not installed";
    a_ = std::make_unique<TestNetns>("wga");
    b_ = std::make_unique<TestNetns>("wgb");
    // One wire between them: 10.0.0.1/24 <-> 10.0.0.2/24.
    const std::string cmd = "ip link add wga0 netns " + a_->name() + " type veth peer name wgb0 netns " + b_->name();
    ASSERT_EQ(system(cmd.c_str()), 0);
    ASSERT_EQ(a_->Exec("ip addr add 10.0.0.1/24 dev wga0 && ip link set wga0 up"), 0);
    ASSERT_EQ(b_->Exec("ip addr add 10.0.0.2/24 dev wgb0 && ip link set wgb0 up"), 0);
  }
  void TearDown() override {
    wg_.clear();
    a_.reset();
    b_.reset();
  }

  // Starts wireguard-go in `ns` and returns the interface name.
  std::string StartWg(const TestNetns& ns, const std::string& suffix) {
    std::string name = "wft" + std::to_string(getpid() % 100000) + suffix;
    int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    auto wg = WireGuardGo::Start(name, {.netns_fd = fd, .die_with_parent = true});
    close(fd);
    EXPECT_THAT(wg, IsOk());
    if (wg.ok()) wg_.push_back(std::make_unique<WireGuardGo>(*std::move(wg)));
    return name;
  }

  std::unique_ptr<TestNetns> a_, b_;
  std::vector<std::unique_ptr<WireGuardGo>> wg_;
};

TEST_F(WireGuardNetnsTest, TwoDevicesConfiguredThroughLibWireguardPassPings) {
  const std::string wa = StartWg(*a_, "a"), wb = StartWg(*b_, "b");
  ASSERT_EQ(wg_.size(), 2u);
  auto ka = Key::GeneratePrivate(), kb = Key::GeneratePrivate();
  auto pa = Key::PublicFrom(*ka), pb = Key::PublicFrom(*kb);
  UapiDevice da(wa), db(wb);

  DeviceConfig ca{.private_key = *ka, .listen_port = 51820, .replace_peers = true};
  ca.peers.push_back(PeerConfig{.public_key = *pb, .endpoint = *net::Endpoint::Parse("10.0.0.2:51821"),
                                .persistent_keepalive = 5, .replace_allowed_ips = true,
                                .allowed_ips = {*net::IpPrefix::Parse("10.99.0.2/32")}});
  DeviceConfig cb{.private_key = *kb, .listen_port = 51821, .replace_peers = true};
  cb.peers.push_back(PeerConfig{.public_key = *pa, .endpoint = *net::Endpoint::Parse("10.0.0.1:51820"),
                                .replace_allowed_ips = true,
                                .allowed_ips = {*net::IpPrefix::Parse("10.99.0.1/32")}});
  // B first: A's keepalive sends a handshake initiation as soon as A has the peer, and
  // an initiation B cannot answer is retried only after REKEY_TIMEOUT (5 s).
  WEFT_ASSERT_OK(db.Set(cb));
  WEFT_ASSERT_OK(da.Set(ca));
  ASSERT_EQ(a_->Exec("ip addr add 10.99.0.1/24 dev " + wa + " && ip link set " + wa + " up"), 0);
  ASSERT_EQ(b_->Exec("ip addr add 10.99.0.2/24 dev " + wb + " && ip link set " + wb + " up"), 0);

  std::string out;
  EXPECT_EQ(a_->Exec("ping -c3 -i0.2 -W2 10.99.0.2", &out), 0) << out;

  auto sa = da.Get();
  WEFT_ASSERT_OK(sa);
  EXPECT_EQ(sa->listen_port, 51820);
  EXPECT_EQ(sa->public_key, *pa);
  ASSERT_EQ(sa->peers.size(), 1u);
  const auto& peer = sa->peers[0];
  EXPECT_EQ(peer.public_key, *pb);
  EXPECT_EQ(peer.endpoint->ToString(), "10.0.0.2:51821");
  EXPECT_EQ(peer.persistent_keepalive, 5);
  ASSERT_EQ(peer.allowed_ips.size(), 1u);
  EXPECT_EQ(peer.allowed_ips[0].ToString(), "10.99.0.2/32");
  EXPECT_NE(peer.last_handshake, std::chrono::system_clock::time_point{}) << "a handshake completed";
  EXPECT_GT(peer.rx_bytes, 0u);
  EXPECT_GT(peer.tx_bytes, 0u);
}

TEST_F(WireGuardNetnsTest, AThousandPeersSetAndReadBack) {
  const std::string wa = StartWg(*a_, "k");
  ASSERT_EQ(wg_.size(), 1u);
  UapiDevice dev(wa);
  DeviceConfig c{.private_key = *Key::GeneratePrivate(), .listen_port = 51830, .replace_peers = true};
  std::map<Key, std::pair<std::string, std::string>> want;  // key -> (endpoint, allowed ip)
  for (int i = 0; i < 1000; ++i) {
    Key pub = *Key::PublicFrom(*Key::GeneratePrivate());
    const std::string ep = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":" + std::to_string(40000 + i);
    const std::string aip = "10.128." + std::to_string(i / 256) + "." + std::to_string(i % 256) + "/32";
    c.peers.push_back(PeerConfig{.public_key = pub, .endpoint = *net::Endpoint::Parse(ep),
                                 .allowed_ips = {*net::IpPrefix::Parse(aip)}});
    want[pub] = {ep, aip};
  }
  WEFT_ASSERT_OK(dev.Set(c));
  auto got = dev.Get();
  WEFT_ASSERT_OK(got);
  ASSERT_EQ(got->peers.size(), 1000u);
  for (const auto& p : got->peers) {
    auto it = want.find(p.public_key);
    ASSERT_NE(it, want.end());
    EXPECT_EQ(p.endpoint->ToString(), it->second.first);
    ASSERT_EQ(p.allowed_ips.size(), 1u);
    EXPECT_EQ(p.allowed_ips[0].ToString(), it->second.second);
  }
  // Removing half of them leaves exactly the other half.
  DeviceConfig rm;
  int n = 0;
  for (const auto& [k, v] : want) {
    if (n++ % 2 == 0) rm.peers.push_back(PeerConfig{.public_key = k, .remove = true});
  }
  WEFT_ASSERT_OK(dev.Set(rm));
  EXPECT_EQ(dev.Get()->peers.size(), 500u);
}

// What weft-agent's --wireguard=auto asks of the kernel: a "wireguard" link made where the
// kernel can (the kind reads back as kernel WireGuard), or Unimplemented and nothing left
// behind where it cannot (this machine: no module), which is when auto picks wireguard-go.
TEST_F(WireGuardNetnsTest, AKernelWireGuardLinkIsMadeOrClearlyRefused) {
  auto ns = sys::Netns::Open(a_->path());
  ASSERT_THAT(ns.status(), IsOk());
  auto nl = sys::OpenNlSocketIn(*ns);
  ASSERT_THAT(nl.status(), IsOk());
  absl::Status made = net::CreateLink(*nl, "wgk0", "wireguard");
  auto link = net::GetLink(*nl, "wgk0");
  if (made.ok()) {
    ASSERT_THAT(link.status(), IsOk());
    EXPECT_EQ(wireguard::BackendOfLinkKind(link->kind), wireguard::Backend::kKernel);
    EXPECT_THAT(net::DeleteLink(*nl, "wgk0"), IsOk());
  } else {
    EXPECT_TRUE(absl::IsUnimplemented(made)) << made;
    EXPECT_TRUE(absl::IsNotFound(link.status())) << "nothing left behind";
  }
  // wireguard-go's device reads back as userspace WireGuard.
  const std::string wg = StartWg(*a_, "u");
  ASSERT_FALSE(wg_.empty());
  auto u = net::GetLink(*nl, wg);
  ASSERT_THAT(u.status(), IsOk());
  EXPECT_EQ(wireguard::BackendOfLinkKind(u->kind), wireguard::Backend::kUserspace) << u->kind;
}

}  // namespace
}  // namespace weft::testing
