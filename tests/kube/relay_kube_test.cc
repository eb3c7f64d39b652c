// weft-relay with hostNetwork in Kubernetes: its relayed addresses are its Node's
// reachable address (ExternalIP, else InternalIP), read from the (fake) API server. A
// real TURN allocation shows what clients are given.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "lib/turn/turn_credentials.h"
#include "lib/testing/free_port.h"
#include "node-agent/relay_client.h"
#include "tests/kube/fake_apiserver.h"
#include "tests/lab/child_process.h"
#include "tests/relay/turn_probe.h"

namespace weft {
namespace {

using nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RelayKubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = testing::FakeApiServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    api_ = *std::move(s);
    api_->AddToken("relay-token", {.username = "system:serviceaccount:kube-system:weft-relay"});
    dir_ = absl::StrCat(::testing::TempDir(), "/relay-kube-", getpid());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/token") << "relay-token\n";
    std::ofstream(dir_ + "/secret") << kSecret << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void PutNode(const std::string& name, json addresses) {
    ASSERT_TRUE(api_->Put("/api/v1/nodes/" + name, {{"metadata", {{"name", name}}}, {"spec", json::object()},
                                                    {"status", {{"addresses", addresses}}}})
                    .ok());
  }
  std::unique_ptr<lab::ChildProcess> StartRelay(const std::string& node, int port, const std::string& log,
                                                std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {WEFT_RELAY_BINARY, "--listen", absl::StrCat("127.0.0.1:", port), "--secret-file",
                                     dir_ + "/secret", "--http-listen", "", "--relay-ports", "41000-41999",
                                     "--relay-ip-from-node", node, "--kube-api", api_->url(), "--kube-token-file",
                                     dir_ + "/token"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<lab::ChildProcess>("", args, log);
  }

  static constexpr char kSecret[] = "relay-secret-0123456789";
  std::unique_ptr<testing::FakeApiServer> api_;
  std::string dir_;
};

TEST_F(RelayKubeTest, RelayedAddressesAreTheNodesExternalIp) {
  PutNode("relay-1", json::array({{{"type", "InternalIP"}, {"address", "127.0.0.1"}},
                                  {{"type", "ExternalIP"}, {"address", "203.0.113.50"}}}));
  const int port = weft::testing::FreeLoopbackUdpTcpPort();
  auto relay = StartRelay("relay-1", port, dir_ + "/relay.log");
  const turn::Credentials c = turn::IssueCredentials(
      kSecret, "n1", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 600);
  absl::StatusOr<std::unique_ptr<agent::RelayClient>> client;
  for (int i = 0; i < 50; ++i) {  // the relay starts: at most 5 s
    client = agent::RelayClient::Start({.server = {*net::IpAddress::Parse("127.0.0.1"), static_cast<uint16_t>(port)},
                                        .username = c.username, .password = c.password, .wg_port = 9});
    if (client.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(client.ok()) << client.status() << "\n" << ReadAll(dir_ + "/relay.log");
  EXPECT_EQ((*client)->relayed().ip.ToString(), "203.0.113.50");
  EXPECT_GE((*client)->relayed().port, 41000);
  EXPECT_NE(ReadAll(dir_ + "/relay.log").find("Node relay-1 is reached at 203.0.113.50"), std::string::npos);
}

// The chart's relays find each other through their Service's EndpointSlices: a peer at
// another relay's relayed address is allowed, any other address refused (403), and a
// relay that leaves the Service is no peer any more.
TEST_F(RelayKubeTest, PeersAreTheRelaysOfTheRelayService) {
  PutNode("relay-1", json::array({{{"type", "ExternalIP"}, {"address", "203.0.113.50"}}}));
  PutNode("relay-2", json::array({{{"type", "InternalIP"}, {"address", "10.0.9.2"}},
                                  {{"type", "ExternalIP"}, {"address", "203.0.113.51"}}}));
  const std::string slice_path = "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/weft-relay-x7k2p";
  const json slice = {
      {"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
      {"metadata", {{"name", "weft-relay-x7k2p"}, {"labels", {{"kubernetes.io/service-name", "weft-relay"}}}}},
      {"addressType", "IPv4"},
      {"ports", {{{"name", "turn-udp"}, {"protocol", "UDP"}, {"port", 3478}}}},
      {"endpoints", {{{"addresses", {"10.0.9.2"}}, {"conditions", {{"ready", true}}}, {"nodeName", "relay-2"}}}}};
  ASSERT_TRUE(api_->Put(slice_path, slice).ok());
  const int port = weft::testing::FreeLoopbackUdpTcpPort();
  auto relay = StartRelay("relay-1", port, dir_ + "/relay.log", {"--peer-relays-service", "kube-system/weft-relay"});
  const turn::Credentials c = turn::IssueCredentials(
      kSecret, "n1", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() + 600);
  const net::Endpoint at{*net::IpAddress::Parse("127.0.0.1"), static_cast<uint16_t>(port)};
  std::unique_ptr<testing::TurnProbe> probe;
  for (int i = 0; i < 50; ++i) {  // the relay starts: at most 5 s
    probe = std::make_unique<testing::TurnProbe>(false, at, net::LoopbackV4(0), c);
    if (probe->Allocate().has_value()) break;
    probe.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(probe) << ReadAll(dir_ + "/relay.log");
  const net::Endpoint other_relay = *net::Endpoint::Parse("203.0.113.51:41500");
  int code = 0;
  for (int i = 0; i < 50 && (code = probe->Permit(other_relay)) != 200; ++i) {  // the watch syncs: 5 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, 200) << ReadAll(dir_ + "/relay.log");
  EXPECT_EQ(probe->Permit(*net::Endpoint::Parse("10.0.9.2:41500")), 403) << "the relay's InternalIP is no relayed address";
  EXPECT_EQ(probe->Permit(*net::Endpoint::Parse("203.0.113.52:41500")), 403);
  EXPECT_EQ(probe->Permit(*net::Endpoint::Parse("203.0.113.51:3478")), 403) << "not a relayed port";
  ASSERT_TRUE(api_->Delete(slice_path).ok());
  for (int i = 0; i < 50 && (code = probe->Permit(other_relay)) != 403; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, 403) << "relay-2 left the Service";
}

TEST_F(RelayKubeTest, ANodeWithoutAddressesIsAClearError) {
  PutNode("bare", json::array({{{"type", "Hostname"}, {"address", "bare"}}}));
  auto relay = StartRelay("bare", weft::testing::FreeLoopbackUdpTcpPort(), dir_ + "/bare.log");
  // It gives up by itself (a SIGTERM while it exits would be a signal's death instead).
  EXPECT_EQ(relay->Wait(10000), 1);
  EXPECT_NE(ReadAll(dir_ + "/bare.log").find("Node bare lists no IPv4 ExternalIP or InternalIP"), std::string::npos)
      << ReadAll(dir_ + "/bare.log");
}

}  // namespace
}  // namespace weft
