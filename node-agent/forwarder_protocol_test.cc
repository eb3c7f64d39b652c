#include "node-agent/forwarder_protocol.h"

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

v1::ForwarderStart GoodStart() {
  v1::ForwarderStart s;
  s.set_server("198.51.100.200:3478");
  s.set_username("1767225600:node-a");
  s.set_password("c2VjcmV0");
  s.set_wg_port(51820);
  return s;
}

TEST(ForwarderProtocolTest, AStartBecomesRelayClientOptionsAndBack) {
  auto o = StartOptionsOf(GoodStart());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server.ToString(), "198.51.100.200:3478");
  EXPECT_EQ(o->wg_port, 51820);
  EXPECT_EQ(o->lifetime_s, 600u) << "0 means the default";
  EXPECT_FALSE(o->tcp);
  auto again = StartOptionsOf(StartOf(*o));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->server, o->server);
  EXPECT_EQ(again->username, o->username);
  EXPECT_EQ(again->password, o->password);
}

TEST(ForwarderProtocolTest, BadStartsAreRefusedWithTheReason) {
  struct Row {
    std::function<void(v1::ForwarderStart&)> edit;
    std::string why;
  };
  const std::vector<Row> rows = {
      {[](auto& s) { s.set_server("relay.example:3478"); }, "relay"},
      {[](auto& s) { s.set_server("198.51.100.200:0"); }, "port 0"},
      {[](auto& s) { s.set_server("[2001:db8::1]:3478"); }, "IPv4 only"},
      {[](auto& s) { s.set_server("224.0.0.1:3478"); }, "multicast"},
      {[](auto& s) { s.set_server("0.0.0.0:3478"); }, "unspecified"},
      {[](auto& s) { s.set_username(std::string(513, 'u')); }, "username: longer than 512"},
      {[](auto& s) { s.set_password(std::string("a\0b", 3)); }, "password: a NUL"},
      {[](auto& s) { s.set_wg_port(0); }, "WireGuard port 0"},
      {[](auto& s) { s.set_wg_port(70000); }, "WireGuard port 70000"},
      {[](auto& s) { s.set_lifetime_s(86400); }, "over an hour"},
  };
  for (const Row& r : rows) {
    v1::ForwarderStart s = GoodStart();
    r.edit(s);
    auto o = StartOptionsOf(s);
    ASSERT_FALSE(o.ok()) << r.why;
    EXPECT_NE(o.status().message().find(r.why), std::string::npos) << o.status();
  }
}

TEST(ForwarderProtocolTest, PeersMustBeUnicastEndpoints) {
  EXPECT_TRUE(PeerOf("198.51.100.200:49152").ok());
  EXPECT_TRUE(PeerOf("127.0.0.1:44000").ok()) << "a relay on this host (tests)";
  EXPECT_FALSE(PeerOf("169.254.169.254:80").ok());
  EXPECT_FALSE(PeerOf("255.255.255.255:9").ok());
  EXPECT_FALSE(PeerOf("not an endpoint").ok());
}

TEST(ForwarderProtocolTest, RepliesAreCheckedBeforeTheAgentBelievesThem) {
  ForwarderState st{.allocated = true,
                    .relayed = *net::Endpoint::Parse("198.51.100.200:50000"),
                    .server = *net::Endpoint::Parse("198.51.100.200:3478"),
                    .tcp = true,
                    .alive = true,
                    .stats = {1, 2, 3}};
  auto back = StateOf(ReplyOf(st));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->relayed, st.relayed);
  EXPECT_EQ(back->server, st.server);
  EXPECT_TRUE(back->tcp && back->alive);
  EXPECT_EQ(back->stats.dropped, 3u);

  EXPECT_FALSE(StateOf(v1::ForwarderReply()).ok()) << "an empty reply is neither ok nor an error";
  auto err = StateOf(ErrorReply(absl::DeadlineExceededError("no answer from the relay")));
  EXPECT_TRUE(absl::IsDeadlineExceeded(err.status())) << err.status();
  v1::ForwarderReply odd;
  odd.set_error_code(999);
  EXPECT_EQ(StateOf(odd).status().code(), absl::StatusCode::kUnknown);
  v1::ForwarderReply broken = ReplyOf(st);
  broken.set_relayed("nonsense");
  EXPECT_FALSE(StateOf(broken).ok());

  v1::ForwarderReply proxy = ReplyOf(st);
  proxy.set_proxy("127.0.0.1:40000");
  EXPECT_EQ(ProxyOf(proxy)->port, 40000);
  for (const char* bad : {"192.0.2.1:40000", "127.0.0.1:0", "", "127.0.0.2:40000"}) {
    proxy.set_proxy(bad);
    EXPECT_FALSE(ProxyOf(proxy).ok()) << bad << ": WireGuard must only ever be pointed at our own proxy";
  }
}

}  // namespace
}  // namespace weft::agent
