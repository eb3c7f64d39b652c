// The agent's relay forwarder, the real process (`weft-agent relay-forwarder`), against
// the real weft-relay on loopback (no root needed): a relayed pair keeps talking while
// its agents are away, the next agent adopts the forwarder with the same allocation and
// proxies, a forwarder without agent exits, and hostile or broken input on its socket is
// refused without harm.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/testing/fake_wireguard.h"
#include "lib/testing/free_port.h"
#include "lib/testing/slurp.h"
#include "lib/turn/turn_credentials.h"
#include "node-agent/forwarder_client.h"
#include "tests/lab/child_process.h"

namespace weft {
namespace {

using agent::ForwarderClient;
using weft::testing::FakeWireGuard;

constexpr char kSecret[] = "forwarder-test-secret-0123456789";

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class RelayForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/fwd-", getpid());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/secret") << kSecret << "\n";
    port_ = weft::testing::FreeLoopbackUdpTcpPort();
    const int http = weft::testing::FreeLoopbackPort(SOCK_STREAM);
    relay_ = std::make_unique<lab::ChildProcess>(
        "",
        std::vector<std::string>{WEFT_RELAY_BINARY, "--listen", absl::StrCat("127.0.0.1:", port_), "--secret-file",
                                 dir_ + "/secret", "--http-listen", absl::StrCat("127.0.0.1:", http), "--relay-ports",
                                 "44000-44999", "--allow-loopback-peers"},
        dir_ + "/relay.log");
  }
  void TearDown() override {
    // Whatever a failed test left: each forwarder is stopped (it would exit idle anyway).
    for (const std::string& s : sockets_) {
      if (auto f = ForwarderClient::Connect(s); f.ok()) (void)(*f)->Stop();
    }
    relay_.reset();
    if (HasFailure()) std::fprintf(stderr, "--- relay log\n%s", weft::testing::Slurp(dir_ + "/relay.log").c_str());
    std::filesystem::remove_all(dir_);
  }
  agent::RelayClient::Options Options(const std::string& node, uint16_t wg_port) const {
    const turn::Credentials c = turn::IssueCredentials(kSecret, node, UnixNow() + 600);
    return {.server = net::LoopbackV4(static_cast<uint16_t>(port_)), .username = c.username, .password = c.password,
            .wg_port = wg_port};
  }
  std::string Socket(const std::string& node) {
    sockets_.push_back(absl::StrCat(dir_, "/", node, ".sock"));
    return sockets_.back();
  }
  // Launched, retried while weft-relay starts (bounded: 5 s).
  std::unique_ptr<ForwarderClient> Launch(const std::string& socket, const agent::RelayClient::Options& o,
                                          int idle_exit_s = 60) {
    absl::StatusOr<std::unique_ptr<ForwarderClient>> f = absl::UnknownError("");
    for (int i = 0; i < 5 && !f.ok(); ++i) {
      f = ForwarderClient::Allocate(socket, o, {.binary = WEFT_AGENT_BINARY, .idle_exit_s = idle_exit_s});
    }
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *std::move(f) : nullptr;
  }

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<lab::ChildProcess> relay_;
  std::vector<std::string> sockets_;
};

TEST_F(RelayForwarderTest, ARelayedPairKeepsTalkingWhileItsAgentsAreAwayAndIsAdoptedUnchanged) {
  FakeWireGuard wa, wb;
  const std::string sa = Socket("a"), sb = Socket("b");
  auto a = Launch(sa, Options("node-a", wa.port));
  auto b = Launch(sb, Options("node-b", wb.port));
  ASSERT_TRUE(a && b);
  auto a_to_b = a->ProxyFor(b->relayed());
  auto b_to_a = b->ProxyFor(a->relayed());
  ASSERT_TRUE(a_to_b.ok() && b_to_a.ok()) << a_to_b.status() << b_to_a.status();
  EXPECT_TRUE(wa.DeliveredTo(*a_to_b, wb, "a->b"));
  EXPECT_TRUE(wb.DeliveredTo(*b_to_a, wa, "b->a"));
  const net::Endpoint relayed_a = a->relayed();

  // Both agents gone (their connections closed, as when the process is killed).
  a.reset();
  b.reset();
  EXPECT_TRUE(wa.DeliveredTo(*a_to_b, wb, "a->b, no agent"));
  EXPECT_TRUE(wb.DeliveredTo(*b_to_a, wa, "b->a, no agent"));

  // The next agent adopts: the same allocation, the same proxy for the same peer.
  auto again = ForwarderClient::Connect(sa);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->state().allocated);
  EXPECT_EQ((*again)->relayed(), relayed_a);
  EXPECT_TRUE((*again)->alive());
  auto b_relayed = ForwarderClient::Connect(sb);
  ASSERT_TRUE(b_relayed.ok());
  auto proxy = (*again)->ProxyFor((*b_relayed)->relayed());
  ASSERT_TRUE(proxy.ok());
  EXPECT_EQ(*proxy, *a_to_b);

  // Stopped: the allocation released, the forwarder gone with its socket.
  EXPECT_TRUE((*again)->Stop().ok());
  EXPECT_TRUE((*b_relayed)->Stop().ok());
  for (int i = 0; i < 100 && std::filesystem::exists(sa); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(std::filesystem::exists(sa));
  EXPECT_TRUE(absl::IsNotFound(ForwarderClient::Connect(sa).status()));
}

// The chart's sidecar: `relay-forwarder --persistent` started on its own; the agent
// (launch off) allocates through it, and after a stop (the relay changed) again; it never
// exits on its own.
TEST_F(RelayForwarderTest, ASidecarForwarderServesAllocationAfterAllocation) {
  FakeWireGuard w;
  const std::string s = Socket("sidecar");
  EXPECT_FALSE(ForwarderClient::Allocate(s, Options("node-s", w.port), {.launch = false}).ok())
      << "no sidecar yet, and the agent must not launch one";
  lab::ChildProcess sidecar("", {WEFT_AGENT_BINARY, "relay-forwarder", "--socket", s, "--persistent"},
                            dir_ + "/sidecar.log");
  std::unique_ptr<ForwarderClient> f;
  for (int i = 0; i < 50 && !f; ++i) {  // bounded: 5 s while weft-relay and the sidecar start
    auto a = ForwarderClient::Allocate(s, Options("node-s", w.port), {.launch = false});
    if (a.ok()) f = *std::move(a);
    else std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(f) << weft::testing::Slurp(dir_ + "/sidecar.log");
  EXPECT_TRUE(f->state().persistent);
  const net::Endpoint first = f->relayed();
  EXPECT_TRUE(f->Stop().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(sidecar.running() && !sidecar.Exited()) << "a stop releases; the sidecar stays";
  auto again = ForwarderClient::Allocate(s, Options("node-s", w.port), {.launch = false});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->alive());
  EXPECT_NE((*again)->relayed(), first) << "a new allocation";
  // An agent that finds it holding an allocation it does not know (a crash between two
  // allocations) takes it over with a fresh one.
  auto third = ForwarderClient::Allocate(s, Options("node-s", w.port), {.launch = false});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE((*again)->alive()) << "the older client's allocation is gone";
  EXPECT_TRUE((*third)->alive());
}

// A forwarder that never accepts (stuck, or a stranger's socket at the path): the agent's
// connect gives up after 2 s instead of waiting forever on the full backlog.
TEST(ForwarderClientTest, AListenerThatNeverAcceptsIsGivenUpOn) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/stuck-", getpid(), ".sock");
  auto addr = agent::UnixAddress(path);
  ASSERT_TRUE(addr.ok());
  unlink(path.c_str());
  const int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  ASSERT_EQ(bind(l, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)), 0);
  ASSERT_EQ(listen(l, 0), 0);
  std::vector<int> queued;  // fill the backlog (bounded: a few)
  for (int i = 0; i < 4; ++i) {
    const int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (connect(c, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
      close(c);
      break;
    }
    queued.push_back(c);
  }
  const auto start = std::chrono::steady_clock::now();
  auto f = ForwarderClient::Connect(path);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(f.ok());
  EXPECT_LT(took, std::chrono::seconds(10)) << f.status();
  for (int c : queued) close(c);
  close(l);
  unlink(path.c_str());
}

TEST_F(RelayForwarderTest, AForwarderWithoutAnAgentExitsAfterItsIdleTime) {
  FakeWireGuard w;
  const std::string s = Socket("idle");
  auto f = Launch(s, Options("node-idle", w.port), /*idle_exit_s=*/1);
  ASSERT_TRUE(f);
  f.reset();
  for (int i = 0; i < 150 && std::filesystem::exists(s); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(std::filesystem::exists(s)) << "still there 3 s after its agent left (idle exit: 1 s)";
}

TEST_F(RelayForwarderTest, RefusedCredentialsFailTheLaunchAndLeaveNoForwarder) {
  FakeWireGuard w;
  const std::string s = Socket("refused");
  agent::RelayClient::Options o = Options("node-x", w.port);
  o.password = "not-the-password";
  auto f = ForwarderClient::Allocate(s, o, {.binary = WEFT_AGENT_BINARY});
  EXPECT_FALSE(f.ok());
  for (int i = 0; i < 100 && std::filesystem::exists(s); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(std::filesystem::exists(s));
}

TEST_F(RelayForwarderTest, BrokenAndHostileRequestsAreRefusedAndTheForwarderServesOn) {
  FakeWireGuard w;
  const std::string s = Socket("hostile");
  auto f = Launch(s, Options("node-h", w.port));
  ASSERT_TRUE(f);
  // Bytes that are no request: that connection is closed, nothing else changes.
  {
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    s.copy(a.sun_path, s.size());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const char junk[] = "\xff\xff\xff\xff garbage";
    send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
    char buf[64];
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    EXPECT_EQ(recv(fd, buf, sizeof(buf), 0), 0) << "closed, no reply";
    close(fd);
  }
  // A proxy for what is no peer (a link-local address, the cloud metadata service): refused.
  auto bad = f->ProxyFor(*net::Endpoint::Parse("169.254.169.254:80"));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("link-local"), std::string::npos) << bad.status();
  // A second allocation on the same forwarder: refused, the first kept.
  auto second = ForwarderClient::Connect(s);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->alive());
  EXPECT_EQ((*second)->relayed(), f->relayed());
  EXPECT_TRUE(f->alive());
}

}  // namespace
}  // namespace weft
