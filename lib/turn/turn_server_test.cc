#include "lib/turn/turn_server.h"

#include <gtest/gtest.h>

#include <functional>

#include "lib/turn/turn_credentials.h"

namespace weft::turn {
namespace {

using net::Endpoint;

Endpoint Ep(const std::string& s) { return *Endpoint::Parse(s); }

class FakePorts : public RelayPorts {
 public:
  absl::StatusOr<Endpoint> Open(uint64_t id, bool) override {
    open.insert(id);
    return Endpoint{*net::IpAddress::Parse("203.0.113.9"), static_cast<uint16_t>(50000 + id)};
  }
  void Close(uint64_t id) override { open.erase(id); }
  std::set<uint64_t> open;
};

constexpr int64_t kNow = 1800000000000;  // ms
const Endpoint kClient = Ep("198.51.100.7:51820");
const Endpoint kPeer = Ep("192.0.2.44:51820");
const Endpoint kStranger = Ep("192.0.2.99:4000");

class TurnServerTest : public ::testing::Test {
 protected:
  static ServerOptions Options() {
    ServerOptions o{.secrets = {"s3cret"}, .nonce_key = "k", .max_allocations_per_user = 1};
    o.peers.relay_ips = {*net::IpAddress::Parse("203.0.113.9")};
    o.peers.allowed = {*net::IpPrefix::Parse("192.0.2.0/24")};  // where these tests' peers are
    return o;
  }
  TurnServerTest() : server_(Options(), ports_) {
    creds_ = IssueCredentials("s3cret", "node-a", kNow / 1000 + 3600);
  }
  stun::TxId Tx() {
    stun::TxId t{};
    t[0] = ++tx_;
    return t;
  }
  // Sends `pkt` from `from`; returns what the server sent.
  std::vector<Send> FromClient(const std::vector<uint8_t>& pkt, const Endpoint& from = kClient) {
    std::vector<Send> out;
    server_.OnClient(from, pkt, kNow, out);
    return out;
  }
  // A request, signed with `creds` after a first unauthenticated try gave the nonce.
  std::vector<Send> Request(uint16_t method, const std::function<void(stun::Builder&)>& attrs,
                            const Credentials& creds, const Endpoint& from = kClient) {
    stun::Builder first(method, stun::Class::kRequest, Tx());
    attrs(first);
    auto challenge = FromClient(first.Finish(), from);
    EXPECT_EQ(challenge.size(), 1u);
    auto m = stun::Message::Parse(challenge[0].data);
    EXPECT_TRUE(m.ok());
    auto nonce = m->GetString(stun::kNonce);
    EXPECT_TRUE(nonce.ok()) << "401 carries a nonce";
    stun::Builder b(method, stun::Class::kRequest, Tx());
    attrs(b);
    b.AddString(stun::kUsername, creds.username).AddString(stun::kRealm, "weft").AddString(stun::kNonce, *nonce);
    b.AddIntegrity(stun::LongTermKey(creds.username, "weft", creds.password));
    return FromClient(b.Finish(), from);
  }
  static int Code(const Send& s) {
    auto m = stun::Message::Parse(s.data);
    if (!m.ok()) return -1;
    if (m->message_class() == stun::Class::kSuccess) return 200;
    auto e = m->GetErrorCode();
    return e.ok() ? e->code : -2;
  }
  std::vector<Send> Allocate(const Endpoint& from = kClient, const Credentials* c = nullptr) {
    return Request(stun::kAllocate, [](stun::Builder& b) { b.AddU32(stun::kRequestedTransport, 17u << 24); },
                   c ? *c : creds_, from);
  }

  FakePorts ports_;
  TurnServer server_;
  Credentials creds_;
  uint8_t tx_ = 0;
};

TEST_F(TurnServerTest, AnswersBindingWithoutCredentials) {
  auto out = FromClient(stun::BuildBindingRequest(Tx()));
  ASSERT_EQ(out.size(), 1u);
  auto r = stun::ParseBindingResponse(out[0].data);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mapped, kClient);
  EXPECT_EQ(server_.counters().binding, 1u);
}

TEST_F(TurnServerTest, AllocatesOnlyWithGoodFreshCredentials) {
  stun::Builder bare(stun::kAllocate, stun::Class::kRequest, Tx());
  bare.AddU32(stun::kRequestedTransport, 17u << 24);
  auto challenge = FromClient(bare.Finish());
  ASSERT_EQ(challenge.size(), 1u);
  EXPECT_EQ(Code(challenge[0]), 401);
  Credentials wrong = creds_;
  wrong.password = "guess";
  EXPECT_EQ(Code(Allocate(kClient, &wrong)[0]), 401);
  Credentials expired = IssueCredentials("s3cret", "node-a", kNow / 1000 - 1);
  EXPECT_EQ(Code(Allocate(kClient, &expired)[0]), 401);
  EXPECT_EQ(server_.allocations(), 0u);
  auto ok = Allocate();
  ASSERT_EQ(Code(ok[0]), 200);
  auto m = stun::Message::Parse(ok[0].data);
  EXPECT_EQ(m->GetXorAddress(stun::kXorRelayedAddress)->ToString(), "203.0.113.9:50001");
  EXPECT_EQ(*m->GetU32(stun::kLifetime), 600u);
  EXPECT_TRUE(m->CheckIntegrity(stun::LongTermKey(creds_.username, "weft", creds_.password)).ok());
  EXPECT_EQ(Code(Allocate()[0]), 437) << "one allocation per 5-tuple";
  EXPECT_GE(server_.counters().unauthenticated, 3u);
}

TEST_F(TurnServerTest, RefusesWhatItDoesNotDo) {
  auto tcp = Request(stun::kAllocate, [](stun::Builder& b) { b.AddU32(stun::kRequestedTransport, 6u << 24); }, creds_);
  EXPECT_EQ(Code(tcp[0]), 442);
  auto v6 = Request(stun::kAllocate, [](stun::Builder& b) {
    b.AddU32(stun::kRequestedTransport, 17u << 24).AddU32(stun::kRequestedAddressFamily, 0x02u << 24);
  }, creds_);
  EXPECT_EQ(Code(v6[0]), 440);
  stun::Builder odd(stun::kAllocate, stun::Class::kRequest, Tx());
  odd.AddU32(stun::kRequestedTransport, 17u << 24).AddU32(0x0031, 1);  // comprehension-required, unknown
  EXPECT_EQ(Code(FromClient(odd.Finish())[0]), 420);
  ASSERT_EQ(Code(Allocate()[0]), 200);
  EXPECT_EQ(Code(Allocate(Ep("198.51.100.8:51820"))[0]), 486) << "quota: one allocation per user here";
}

TEST_F(TurnServerTest, RelaysOnlyToAndFromPermittedPeers) {
  ASSERT_EQ(Code(Allocate()[0]), 200);
  const uint64_t id = *ports_.open.begin();
  std::vector<Send> out;
  server_.OnPeer(id, kPeer, std::vector<uint8_t>{1, 2, 3}, kNow, out);
  EXPECT_TRUE(out.empty()) << "no permission yet";
  EXPECT_EQ(server_.counters().no_permission, 1u);
  ASSERT_EQ(Code(Request(stun::kCreatePermission, [](stun::Builder& b) { b.AddXorAddress(stun::kXorPeerAddress, kPeer); },
                         creds_)[0]),
            200);
  server_.OnPeer(id, kPeer, std::vector<uint8_t>{1, 2, 3}, kNow, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, kClient);
  auto data = stun::Message::Parse(out[0].data);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->method(), stun::kData);
  EXPECT_EQ(*data->GetXorAddress(stun::kXorPeerAddress), kPeer);
  out.clear();
  server_.OnPeer(id, kStranger, std::vector<uint8_t>{9}, kNow, out);
  EXPECT_TRUE(out.empty());
  // Send indications: to the permitted peer only.
  stun::Builder send(stun::kSend, stun::Class::kIndication, Tx());
  send.AddXorAddress(stun::kXorPeerAddress, kPeer).AddRaw(stun::kDataAttr, std::vector<uint8_t>{7, 7});
  auto relayed = FromClient(send.Finish(false));
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].allocation, id);
  EXPECT_EQ(relayed[0].to, kPeer);
  EXPECT_EQ(relayed[0].data, (std::vector<uint8_t>{7, 7}));
  stun::Builder stray(stun::kSend, stun::Class::kIndication, Tx());
  stray.AddXorAddress(stun::kXorPeerAddress, kStranger).AddRaw(stun::kDataAttr, std::vector<uint8_t>{7});
  EXPECT_TRUE(FromClient(stray.Finish(false)).empty());
  EXPECT_EQ(server_.counters().no_permission, 3u);
}

TEST_F(TurnServerTest, ChannelsBothWays) {
  ASSERT_EQ(Code(Allocate()[0]), 200);
  const uint64_t id = *ports_.open.begin();
  auto bind = [&](uint32_t ch, const Endpoint& peer) {
    return Code(Request(stun::kChannelBind, [&](stun::Builder& b) {
      b.AddU32(stun::kChannelNumber, ch << 16).AddXorAddress(stun::kXorPeerAddress, peer);
    }, creds_)[0]);
  };
  EXPECT_EQ(bind(0x3FFF, kPeer), 400);
  EXPECT_EQ(bind(0x8000, kPeer), 400);
  ASSERT_EQ(bind(0x4000, kPeer), 200);
  EXPECT_EQ(bind(0x4000, kStranger), 400) << "the channel is taken";
  EXPECT_EQ(bind(0x4001, kPeer), 400) << "the peer has a channel";
  auto relayed = FromClient({0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0});
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].to, kPeer);
  EXPECT_EQ(relayed[0].data, (std::vector<uint8_t>{'a', 'b', 'c'}));
  std::vector<Send> out;
  server_.OnPeer(id, kPeer, std::vector<uint8_t>{'x', 'y'}, kNow, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, (std::vector<uint8_t>{0x40, 0x00, 0x00, 0x02, 'x', 'y'}));
  EXPECT_TRUE(FromClient({0x40, 0x05, 0x00, 0x01, 'z'}).empty()) << "unbound channel";
  EXPECT_TRUE(FromClient({0x40, 0x00, 0x00, 0x09, 'z'}).empty()) << "length overruns";
  EXPECT_EQ(server_.counters().no_channel, 1u);
}

TEST_F(TurnServerTest, RefreshToZeroAndExpiryFreeTheRelayPort) {
  ASSERT_EQ(Code(Allocate()[0]), 200);
  ASSERT_EQ(ports_.open.size(), 1u);
  auto r = Request(stun::kRefresh, [](stun::Builder& b) { b.AddU32(stun::kLifetime, 0); }, creds_);
  EXPECT_EQ(Code(r[0]), 200);
  EXPECT_TRUE(ports_.open.empty());
  EXPECT_EQ(server_.allocations(), 0u);
  ASSERT_EQ(Code(Allocate()[0]), 200);
  server_.Expire(kNow + 601 * 1000);
  EXPECT_EQ(server_.allocations(), 0u);
  EXPECT_TRUE(ports_.open.empty());
}

TEST_F(TurnServerTest, CountsGarbage) {
  EXPECT_TRUE(FromClient({1, 2, 3}).empty());
  EXPECT_TRUE(FromClient(std::vector<uint8_t>(64, 0xff)).empty());
  EXPECT_EQ(server_.counters().malformed, 2u);
}

}  // namespace
}  // namespace weft::turn
