#include "lib/turn/turn_server.h"

#include <gtest/gtest.h>

#include <functional>

#include "absl/strings/str_cat.h"

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
    return FromClientOver(Transport::kUdp, pkt, from);
  }
  std::vector<Send> FromClientOver(Transport t, const std::vector<uint8_t>& pkt, const Endpoint& from = kClient,
                                   int64_t now = kNow) {
    std::vector<Send> out;
    server_.OnClient(Client{t, from}, pkt, now, out);
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

TEST_F(TurnServerTest, PeersOutsideThePolicyAre403AndNothingIsRelayedToThem) {
  ASSERT_EQ(Code(Allocate()[0]), 200);
  const uint64_t before = server_.counters().to_peers;
  for (const char* peer : {"127.0.0.1:4000", "0.0.0.0:50001", "224.0.0.251:5353", "239.1.2.3:50001",
                           "255.255.255.255:50001", "169.254.169.254:80", "203.0.113.9:3478", "203.0.113.9:22",
                           "198.51.100.99:50001"}) {
    for (uint16_t method : {stun::kCreatePermission, stun::kChannelBind}) {
      auto out = Request(method, [&](stun::Builder& b) {
        if (method == stun::kChannelBind) b.AddU32(stun::kChannelNumber, 0x4000u << 16);
        b.AddXorAddress(stun::kXorPeerAddress, Ep(peer));
      }, creds_);
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(Code(out[0]), 403) << peer;
      EXPECT_EQ(out[0].allocation, 0u);
    }
    stun::Builder send(stun::kSend, stun::Class::kIndication, Tx());
    send.AddXorAddress(stun::kXorPeerAddress, Ep(peer)).AddRaw(stun::kDataAttr, std::vector<uint8_t>{1});
    EXPECT_TRUE(FromClient(send.Finish(false)).empty()) << peer;
    EXPECT_TRUE(FromClient({0x40, 0x00, 0x00, 0x01, 'x', 0, 0, 0}).empty()) << "no channel was bound";
  }
  EXPECT_EQ(server_.counters().to_peers, before);
  EXPECT_EQ(server_.counters().forbidden, 18u);
  // A permitted relay IP does not open its other ports to Send indications.
  ASSERT_EQ(Code(Request(stun::kCreatePermission, [](stun::Builder& b) {
    b.AddXorAddress(stun::kXorPeerAddress, Ep("203.0.113.9:50123"));
  }, creds_)[0]), 200);
  stun::Builder own(stun::kSend, stun::Class::kIndication, Tx());
  own.AddXorAddress(stun::kXorPeerAddress, Ep("203.0.113.9:3478")).AddRaw(stun::kDataAttr, std::vector<uint8_t>{1});
  EXPECT_TRUE(FromClient(own.Finish(false)).empty());
  EXPECT_EQ(server_.counters().forbidden, 19u);
}

TEST_F(TurnServerTest, PermissionsPerAllocationAreBounded) {
  ASSERT_EQ(Code(Allocate()[0]), 200);
  for (int i = 1; i <= 64; ++i) {
    ASSERT_EQ(Code(Request(stun::kCreatePermission, [i](stun::Builder& b) {
      b.AddXorAddress(stun::kXorPeerAddress, Ep(absl::StrCat("192.0.2.", i, ":7")));
    }, creds_)[0]), 200);
  }
  EXPECT_EQ(Code(Request(stun::kCreatePermission, [](stun::Builder& b) {
    b.AddXorAddress(stun::kXorPeerAddress, Ep("192.0.2.65:7"));
  }, creds_)[0]), 508);
  EXPECT_EQ(Code(Request(stun::kCreatePermission, [](stun::Builder& b) {
    b.AddXorAddress(stun::kXorPeerAddress, Ep("192.0.2.1:7"));
  }, creds_)[0]), 200) << "refreshing one it has is fine";
}

TEST_F(TurnServerTest, AReplayedAllocateAfterTheNonceLifetimeIsRefused) {
  // A request captured on the way (signed, with its nonce), replayed later.
  stun::Builder first(stun::kAllocate, stun::Class::kRequest, Tx());
  first.AddU32(stun::kRequestedTransport, 17u << 24);
  auto challenge = FromClient(first.Finish());
  const std::string nonce = *stun::Message::Parse(challenge[0].data)->GetString(stun::kNonce);
  stun::Builder b(stun::kAllocate, stun::Class::kRequest, Tx());
  b.AddU32(stun::kRequestedTransport, 17u << 24);
  b.AddString(stun::kUsername, creds_.username).AddString(stun::kRealm, "weft").AddString(stun::kNonce, nonce);
  b.AddIntegrity(stun::LongTermKey(creds_.username, "weft", creds_.password));
  const std::vector<uint8_t> captured = b.Finish();
  EXPECT_EQ(Code(FromClientOver(Transport::kUdp, captured, Ep("198.51.100.66:1234"))[0]), 438)
      << "the nonce is bound to the client's 5-tuple";
  EXPECT_EQ(Code(FromClientOver(Transport::kTcp, captured)[0]), 438) << "and to its transport";
  EXPECT_EQ(Code(FromClientOver(Transport::kUdp, captured, kClient, kNow + 601 * 1000)[0]), 438)
      << "and lives 10 minutes";
  EXPECT_EQ(server_.allocations(), 0u);
  EXPECT_EQ(Code(FromClientOver(Transport::kUdp, captured, kClient, kNow + 599 * 1000)[0]), 200);
}

TEST_F(TurnServerTest, AUsernameExpiringBeyondTheCredentialLifetimeIsRefused) {
  Credentials forever = IssueCredentials("s3cret", "node-a", 4102444800);  // 2100-01-01
  EXPECT_EQ(Code(Allocate(kClient, &forever)[0]), 401);
  Credentials day = IssueCredentials("s3cret", "node-a", kNow / 1000 + 24 * 3600);
  EXPECT_EQ(Code(Allocate(kClient, &day)[0]), 200) << "what the controller issues";
}

TEST_F(TurnServerTest, SecretsRotateWithAnOverlap) {
  const Credentials old_creds = creds_;
  const Credentials new_creds = IssueCredentials("n3w-secret", "node-a", kNow / 1000 + 3600);
  EXPECT_EQ(Code(Allocate(Ep("198.51.100.7:1"), &new_creds)[0]), 401);
  server_.SetSecrets({"n3w-secret", "s3cret"});
  EXPECT_EQ(Code(Allocate(Ep("198.51.100.7:1"), &new_creds)[0]), 200);
  EXPECT_EQ(Code(Request(stun::kRefresh, [](stun::Builder& b) { b.AddU32(stun::kLifetime, 0); }, new_creds,
                         Ep("198.51.100.7:1"))[0]), 200);
  EXPECT_EQ(Code(Allocate(kClient, &old_creds)[0]), 200) << "the old one still works in the overlap";
  server_.SetSecrets({"n3w-secret"});
  EXPECT_EQ(Code(Request(stun::kRefresh, [](stun::Builder&) {}, old_creds)[0]), 401) << "then it does not";
}

TEST_F(TurnServerTest, TheTransportIsPartOfTheFiveTupleAndATcpAllocationEndsWithItsConnection) {
  ASSERT_EQ(Code(Allocate()[0]), 200);  // over UDP from kClient
  const uint64_t id = *ports_.open.begin();
  ASSERT_EQ(Code(Request(stun::kChannelBind, [](stun::Builder& b) {
    b.AddU32(stun::kChannelNumber, 0x4000u << 16).AddXorAddress(stun::kXorPeerAddress, kPeer);
  }, creds_)[0]), 200);
  // The same address and port over TCP is another client: nothing of the UDP one's.
  EXPECT_TRUE(FromClientOver(Transport::kTcp, {0x40, 0x00, 0x00, 0x01, 'x', 0, 0, 0}).empty());
  EXPECT_EQ(server_.counters().no_allocation, 1u);
  std::vector<Send> out;
  server_.OnPeer(id, kPeer, std::vector<uint8_t>{'y'}, kNow, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].transport, Transport::kUdp) << "relayed data goes to the allocation's own transport";
  server_.ClientGone(Client{Transport::kTcp, kClient});
  EXPECT_EQ(server_.allocations(), 1u) << "a TCP connection going away is not the UDP client's";
  server_.ClientGone(Client{Transport::kUdp, kClient});
  EXPECT_EQ(server_.allocations(), 0u);
}

TEST_F(TurnServerTest, NothingLargerThanTheRequestBeforeAuthentication) {
  // 420: one unknown comprehension-required attribute (28 bytes) would get 36 back.
  stun::Builder odd(stun::kAllocate, stun::Class::kRequest, Tx());
  odd.AddU32(0x0031, 1);
  const std::vector<uint8_t> small = odd.Finish(false);
  EXPECT_TRUE(FromClient(small).empty());
  EXPECT_EQ(server_.counters().not_answered, 1u);
  // An unknown method, a 400 with a bare header: not answered either.
  stun::Builder unknown(0x0fff, stun::Class::kRequest, Tx());
  EXPECT_TRUE(FromClient(unknown.Finish(false)).empty());
  // The 401 challenge is ERROR-CODE, REALM and NONCE, no more.
  stun::Builder bare(stun::kAllocate, stun::Class::kRequest, Tx());
  bare.AddU32(stun::kRequestedTransport, 17u << 24);
  auto challenge = FromClient(bare.Finish());
  ASSERT_EQ(challenge.size(), 1u);
  EXPECT_LE(challenge[0].data.size(), 64u);
  auto binding = FromClient(stun::BuildBindingRequest(Tx()));
  ASSERT_EQ(binding.size(), 1u);
  EXPECT_EQ(binding[0].data.size(), 32u) << "XOR-MAPPED-ADDRESS only";
}

}  // namespace
}  // namespace weft::turn
