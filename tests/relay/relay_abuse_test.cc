// weft-relay as the internet sees it: the real binary on loopback, played against by
// clients that abuse it (a node's credentials aimed at the relay host, idle and
// never-reading TCP floods, a TCP connection from a UDP client's address). Each case
// failed before the relay was hardened (issue 21).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/testing/free_port.h"
#include "lib/testing/slurp.h"
#include "tests/lab/child_process.h"
#include "tests/relay/turn_probe.h"

namespace weft {
namespace {

using testing::TurnProbe;
constexpr char kSecret[] = "abuse-test-secret-0123456789";

// The relay under test is built like this test: memory and time are the release
// binary's to measure, not a sanitizer's (its shadow memory alone is larger).
// GCC says so with __SANITIZE_*__, Clang with __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(WEFT_TEST_SANITIZED)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

net::Endpoint Ep(const std::string& s) { return *net::Endpoint::Parse(s); }

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A UDP socket on 127.0.0.1 that counts what reaches it and echoes it back.
struct UdpPeer {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  net::Endpoint at;
  UdpPeer() {
    sockaddr_in a = net::ToSockaddrV4(net::LoopbackV4(0));
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    at = net::FromSockaddrV4(a);
  }
  ~UdpPeer() { close(fd); }
  // Datagrams received within `ms`; the last sender in `from`.
  int Drain(int ms, net::Endpoint* from = nullptr) {
    int n = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      sockaddr_in a{};
      socklen_t len = sizeof(a);
      uint8_t buf[2048];
      while (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&a), &len) > 0) {
        ++n;
        if (from) *from = net::FromSockaddrV4(a);
        len = sizeof(a);
      }
    }
    return n;
  }
  void SendTo(const net::Endpoint& to, const std::string& what) {
    sockaddr_in a = net::ToSockaddrV4(to);
    sendto(fd, what.data(), what.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
};

class RelayAbuseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;  // the floods below need descriptors of their own
    setrlimit(RLIMIT_NOFILE, &r);
  }
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/relay-abuse-", getpid());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/secret") << kSecret << "\n";
  }
  void TearDown() override {
    relay_.reset();
    if (HasFailure()) std::fprintf(stderr, "--- relay log\n%s", testing::Slurp(dir_ + "/relay.log").c_str());
    std::filesystem::remove_all(dir_);
  }
  void StartRelay(std::vector<std::string> extra = {}) {
    port_ = weft::testing::FreeLoopbackUdpTcpPort();
    http_ = weft::testing::FreeLoopbackPort(SOCK_STREAM);
    std::vector<std::string> args = {WEFT_RELAY_BINARY, "--listen", absl::StrCat("127.0.0.1:", port_), "--secret-file",
                                     dir_ + "/secret", "--http-listen", absl::StrCat("127.0.0.1:", http_),
                                     "--relay-ports", "43000-43999"};
    args.insert(args.end(), extra.begin(), extra.end());
    relay_ = std::make_unique<lab::ChildProcess>("", args, dir_ + "/relay.log");
    for (int i = 0; i < 50; ++i) {  // up within 5 s
      if (Binding()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "weft-relay did not answer";
  }
  net::Endpoint relay() const { return net::LoopbackV4(static_cast<uint16_t>(port_)); }
  turn::Credentials Creds(const std::string& name) { return turn::IssueCredentials(kSecret, name, UnixNow() + 600); }
  // One STUN Binding over UDP answered within `ms`.
  bool Binding(int ms = 100) {
    TurnProbe p(false, relay(), net::LoopbackV4(0), {});
    stun::TxId tx{};
    tx[0] = 7;
    p.SendFrame(stun::BuildBindingRequest(tx));
    return !p.Receive(ms).empty();
  }
  // A value from /metrics ("weft_relay_allocations", "weft_relay_tcp_connections").
  int64_t Metric(const std::string& line_prefix) {
    TurnProbe http(true, net::LoopbackV4(static_cast<uint16_t>(http_)), net::LoopbackV4(0), {});
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    send(http.fd(), req.data(), req.size(), MSG_NOSIGNAL);
    std::string body;
    char buf[4096];
    for (int i = 0; i < 100; ++i) {
      pollfd p{http.fd(), POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) break;
      ssize_t n = recv(http.fd(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      body.append(buf, n);
    }
    const size_t at = body.find("\n" + line_prefix + " ");
    int64_t v = -1;
    if (at != std::string::npos) {
      const size_t start = at + line_prefix.size() + 2;
      (void)absl::SimpleAtoi(body.substr(start, body.find('\n', start) - start), &v);
    }
    return v;
  }
  std::string Status(const std::string& key) {
    std::ifstream in(absl::StrCat("/proc/", relay_->pid(), "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(key + ":", 0) == 0) return line;
    }
    return "";
  }
  int64_t StatusKb(const std::string& key) {
    std::string line = Status(key);
    int64_t kb = -1;
    std::vector<std::string> parts;
    std::string tok;
    for (char c : line) {
      if (c == ' ' || c == '\t') {
        if (!tok.empty()) parts.push_back(tok);
        tok.clear();
      } else {
        tok += c;
      }
    }
    if (!tok.empty()) parts.push_back(tok);
    if (parts.size() >= 2) (void)absl::SimpleAtoi(parts[1], &kb);
    return kb;
  }
  // CPU seconds the relay used so far.
  double CpuSeconds() {
    std::string stat = testing::Slurp(absl::StrCat("/proc/", relay_->pid(), "/stat"));
    const size_t close_paren = stat.rfind(')');
    std::vector<std::string> f;
    std::string tok;
    for (size_t i = close_paren + 2; i < stat.size(); ++i) {
      if (stat[i] == ' ') {
        f.push_back(tok);
        tok.clear();
      } else {
        tok += stat[i];
      }
    }
    int64_t ut = 0, st = 0;
    if (f.size() > 12) {
      (void)absl::SimpleAtoi(f[11], &ut);
      (void)absl::SimpleAtoi(f[12], &st);
    }
    return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  std::string dir_;
  int port_ = 0, http_ = 0;
  std::unique_ptr<lab::ChildProcess> relay_;
};

TEST_F(RelayAbuseTest, ANodesCredentialsReachNeitherTheRelayHostNorMulticast) {
  StartRelay();
  UdpPeer victim;  // a service on the relay host's loopback
  TurnProbe c(false, relay(), net::LoopbackV4(0), Creds("node-a"));
  ASSERT_TRUE(c.Allocate().has_value());
  const std::vector<net::Endpoint> targets = {victim.at, Ep(absl::StrCat("0.0.0.0:", victim.at.port)),
                                              relay(), Ep(absl::StrCat("127.0.0.1:", http_)),
                                              Ep("239.1.2.3:5000"), Ep("224.0.0.251:5353")};
  for (const auto& t : targets) {
    EXPECT_EQ(c.Permit(t), 403) << t.ToString();
    EXPECT_EQ(c.BindChannel(0x4000, t), 403) << t.ToString();
    c.SendIndication(t, {'x'});
    c.SendChannelData(0x4000, {'y'});
  }
  EXPECT_EQ(victim.Drain(300), 0) << "nothing delivered";
  // 403s; the Send indications and ChannelData never had a permission or a channel.
  EXPECT_GE(Metric("weft_relay_dropped_total{reason=\"forbidden_peer\"}"), 12);
}

TEST_F(RelayAbuseTest, FiveThousandIdleTcpConnectionsAreCappedAndUdpClientsStillServed) {
  StartRelay();
  const double cpu_before = CpuSeconds();
  std::vector<int> fds;
  for (int i = 0; i < 5000; ++i) {  // from 100 source addresses, 50 each
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << "descriptors: " << i;
    sockaddr_in src = net::ToSockaddrV4(Ep(absl::StrCat("127.0.", 1 + i / 5000, ".", 2 + i % 100, ":0")));
    bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src));
    sockaddr_in to = net::ToSockaddrV4(relay());
    connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t open = Metric("weft_relay_tcp_connections");
  EXPECT_GT(open, 0);
  EXPECT_LE(open, 1024) << "the default cap";
  EXPECT_GE(Metric("weft_relay_tcp_closed_total{reason=\"over_cap\"}"), 1);
  // Served meanwhile: STUN and a TURN allocation over UDP.
  EXPECT_TRUE(Binding(1000));
  TurnProbe c(false, relay(), net::LoopbackV4(0), Creds("node-a"));
  EXPECT_TRUE(c.Allocate().has_value());
  // Without an allocation a connection is closed after 10 s; the loop does not spin.
  std::this_thread::sleep_for(std::chrono::seconds(10));
  EXPECT_GE(Metric("weft_relay_tcp_closed_total{reason=\"no_allocation\"}"), open);
  if (!kSanitized) {
    EXPECT_LT(CpuSeconds() - cpu_before, 6.0) << "12 s of a flood must not cost a core";
  }
  for (int fd : fds) close(fd);
}

TEST_F(RelayAbuseTest, TwoHundredTcpConnectionsThatNeverReadKeepTheRelaySmall) {
  if (kSanitized) GTEST_SKIP() << "measures the release binary's memory";
  StartRelay();
  std::vector<int> fds;
  stun::TxId tx{};
  std::vector<uint8_t> burst;
  for (int k = 0; k < 4096; ++k) {  // 4096 Binding requests per write: 80 KiB and more
    tx[0] = static_cast<uint8_t>(k);
    auto b = stun::BuildBindingRequest(tx);
    burst.insert(burst.end(), b.begin(), b.end());
  }
  for (int i = 0; i < 200; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;  // a small window: what the relay answers piles up on its side
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in src = net::ToSockaddrV4(Ep(absl::StrCat("127.0.2.", 2 + i % 100, ":0")));
    bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src));
    sockaddr_in to = net::ToSockaddrV4(relay());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds.push_back(fd);
  }
  // Write until every connection's buffers are full (the relay stops reading them).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  size_t written = 0;
  while (std::chrono::steady_clock::now() < until) {
    size_t round = 0;
    for (int fd : fds) {
      ssize_t n = send(fd, burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) round += static_cast<size_t>(n);
    }
    written += round;
    if (round == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int64_t peak_kb = StatusKb("VmHWM");
  std::fprintf(stderr, "200 never-reading connections: %zu MB written, relay peak RSS %lld MB\n", written >> 20,
               static_cast<long long>(peak_kb >> 10));
  EXPECT_GT(written, size_t{200} << 10);
  EXPECT_GT(peak_kb, 0);
  EXPECT_LT(peak_kb, 100 * 1024) << "relay peak RSS";
  int answered = 0;
  for (int i = 0; i < 10; ++i) answered += Binding(1000) ? 1 : 0;  // a second each: CI machines are busy
  EXPECT_GE(answered, 9) << "UDP clients are still served";
  std::fprintf(stderr, "relay CPU %.1f s\n", CpuSeconds());
  for (int fd : fds) close(fd);
}

TEST_F(RelayAbuseTest, ATcpConnectionFromAUdpClientsAddressGetsNothingOfIts) {
  StartRelay({"--allow-loopback-peers", "--allowed-peer-ip", "127.0.0.1"});
  UdpPeer peer;
  TurnProbe udp(false, relay(), net::LoopbackV4(0), Creds("node-a"));
  auto relayed = udp.Allocate();
  ASSERT_TRUE(relayed.has_value());
  ASSERT_EQ(udp.BindChannel(0x4000, peer.at), 200);
  udp.SendChannelData(0x4000, {'h', 'i'});
  net::Endpoint seen;
  ASSERT_EQ(peer.Drain(300, &seen), 1);
  ASSERT_EQ(seen, *relayed);
  // The same IP and port, over TCP: another 5-tuple.
  TurnProbe tcp(true, relay(), udp.local(), Creds("intruder"));
  ASSERT_TRUE(tcp.connected());
  for (int i = 0; i < 5; ++i) peer.SendTo(*relayed, "for the UDP client");
  EXPECT_TRUE(tcp.Receive(500).empty()) << "nothing of the UDP client's data";
  int to_udp = 0;
  while (!udp.Receive(100).empty()) ++to_udp;
  EXPECT_EQ(to_udp, 5);
  tcp.SendChannelData(0x4000, {'x'});
  EXPECT_EQ(peer.Drain(300), 0) << "nor can it send on the UDP client's channel";
  // A TCP allocation ends with its connection.
  const int64_t before = Metric("weft_relay_allocations");
  {
    TurnProbe t2(true, relay(), net::LoopbackV4(0), Creds("node-b"));
    ASSERT_TRUE(t2.Allocate().has_value());
    EXPECT_EQ(Metric("weft_relay_allocations"), before + 1);
  }
  int64_t after = -1;
  for (int i = 0; i < 20 && (after = Metric("weft_relay_allocations")) != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after, before);
}

}  // namespace
}  // namespace weft
