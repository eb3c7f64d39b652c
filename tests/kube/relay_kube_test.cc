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
  std::unique_ptr<lab::ChildProcess> StartRelay(const std::string& node, int port, const std::string& log) {
    return std::make_unique<lab::ChildProcess>(
        "",
        std::vector<std::string>{WEFT_RELAY_BINARY, "--listen", absl::StrCat("127.0.0.1:", port), "--secret-file",
                                 dir_ + "/secret", "--http-listen", "", "--relay-ports", "41000-41999",
                                 "--relay-ip-from-node", node, "--kube-api", api_->url(), "--kube-token-file",
                                 dir_ + "/token"},
        log);
  }

  static constexpr char kSecret[] = "relay-secret-0123456789";
  std::unique_ptr<testing::FakeApiServer> api_;
  std::string dir_;
};

TEST_F(RelayKubeTest, RelayedAddressesAreTheNodesExternalIp) {
  PutNode("relay-1", json::array({{{"type", "InternalIP"}, {"address", "127.0.0.1"}},
                                  {{"type", "ExternalIP"}, {"address", "203.0.113.50"}}}));
  const int port = weft::testing::FreeLoopbackPort(SOCK_DGRAM);
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

TEST_F(RelayKubeTest, ANodeWithoutAddressesIsAClearError) {
  PutNode("bare", json::array({{{"type", "Hostname"}, {"address", "bare"}}}));
  auto relay = StartRelay("bare", weft::testing::FreeLoopbackPort(SOCK_DGRAM), dir_ + "/bare.log");
  for (int i = 0; i < 100 && ReadAll(dir_ + "/bare.log").find("lists no") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(relay->Stop(), 1);
  EXPECT_NE(ReadAll(dir_ + "/bare.log").find("Node bare lists no IPv4 ExternalIP or InternalIP"), std::string::npos)
      << ReadAll(dir_ + "/bare.log");
}

}  // namespace
}  // namespace weft
