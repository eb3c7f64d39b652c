// The EndpointService over an in-process gRPC channel: real streams, no network.
#include "controller/controller_service.h"
#include "controller/node_token.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>;

class ControllerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.RegisterService(&service_);
    b.SetMaxReceiveMessageSize(1 << 20);
    server_ = b.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
    stub_ = v1::EndpointService::NewStub(channel_);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2)); }

  struct Agent {
    std::unique_ptr<grpc::ClientContext> ctx = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<Stream> stream;
    std::string pod_cidr;
  };
  Agent Connect(const std::string& node, const std::string& token = "secret", uint64_t resume = 0,
                bool welcomed = true) {
    Agent a;
    a.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    a.stream = stub_->Connect(a.ctx.get());
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node(node);
    hello.mutable_hello()->set_token(token);
    hello.mutable_hello()->set_resume_version(resume);
    EXPECT_TRUE(a.stream->Write(hello));
    if (welcomed) {
      v1::ControllerMessage m;
      EXPECT_TRUE(a.stream->Read(&m));
      EXPECT_EQ(m.msg_case(), v1::ControllerMessage::kWelcome);
      if (m.has_welcome() && m.welcome().pod_cidrs_size() > 0) a.pod_cidr = m.welcome().pod_cidrs(0);
    }
    return a;
  }
  // A node's honest report: the pod CIDR it was given, a key of its own.
  static v1::AgentMessage Report(const std::string& name, v1::NatMapping mapping, const std::string& ip,
                                 const std::string& pod_cidr) {
    v1::AgentMessage m;
    auto* n = m.mutable_node();
    n->set_name(name);
    n->set_wireguard_public_key(std::string(32, name.empty() ? 'k' : name[0]));
    n->add_pod_cidrs(pod_cidr);
    n->mutable_nat()->set_mapping(mapping);
    n->mutable_nat()->set_public_ip(ip);
    n->mutable_nat()->mutable_reflexive()->set_ip(ip);
    n->mutable_nat()->mutable_reflexive()->set_port(51820);
    return m;
  }
  // A node joined and reported (its snapshot and its own delta read).
  Agent Reported(const std::string& node, const std::string& ip) {
    Agent a = Connect(node);
    v1::ControllerMessage m;
    EXPECT_TRUE(a.stream->Read(&m));  // snapshot
    EXPECT_TRUE(a.stream->Write(Report(node, v1::NAT_MAPPING_NONE, ip, a.pod_cidr)));
    EXPECT_TRUE(a.stream->Read(&m));  // its delta
    EXPECT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);
    return a;
  }
  static grpc::Status Close(Agent& a) {
    a.stream->WritesDone();
    v1::ControllerMessage drain;
    while (a.stream->Read(&drain)) {
    }
    return a.stream->Finish();
  }

  ControllerService service_{"secret", *PodCidrAllocator::Create(*net::IpPrefix::Parse("10.244.0.0/16"), 24)};
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EndpointService::Stub> stub_;
};

TEST_F(ControllerServiceTest, BadTokenIsRefused) {
  Agent a = Connect("n1", "wrong", 0, /*welcomed=*/false);
  v1::ControllerMessage m;
  EXPECT_FALSE(a.stream->Read(&m));
  EXPECT_EQ(a.stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Joins and refusals are told (the admin's view of why a node does not join), a refused
// name escaped, and a refusal repeated by an agent in a loop costs a few lines.
TEST_F(ControllerServiceTest, JoinsAndRefusalsAreLoggedRateLimited) {
  std::mutex mu;
  std::vector<std::string> lines;
  service_.SetLog([&](const std::string& l) {
    std::lock_guard<std::mutex> g(mu);
    lines.push_back(l);
  });
  Agent ok = Connect("n1");
  for (int i = 0; i < 20; ++i) {
    Agent bad = Connect("n2", "wrong", 0, /*welcomed=*/false);
    EXPECT_EQ(Close(bad).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  Agent evil = Connect("evil\n\x1b[31m", "secret", 0, /*welcomed=*/false);
  EXPECT_EQ(Close(evil).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Close(ok).ok());
  // A refusal may be logged just after the agent has its answer: wait for the last one.
  for (int i = 0; i < 200; ++i) {  // bounded: 2 s
    {
      std::lock_guard<std::mutex> g(mu);
      if (lines.size() >= 7) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard<std::mutex> g(mu);
  ASSERT_EQ(lines.size(), 7u) << "one join, 5 refusals of the 20 (a burst of 5), the bad name";
  // The join is logged once n1 is welcomed, which may be after n2's first refusals.
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "node \"n1\" joined"), 1);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "node \"n2\" refused: bad join token"), 5);
  EXPECT_TRUE(absl::StartsWith(lines[6], "node \"evil\\x0a\\x1b[31m\" refused: Hello.node: ")) << lines[6];
}

TEST_F(ControllerServiceTest, FirstMessageMustBeHello) {
  Agent a;
  a.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  a.stream = stub_->Connect(a.ctx.get());
  a.stream->Write(Report("n1", v1::NAT_MAPPING_NONE, "198.51.100.1", a.pod_cidr));
  v1::ControllerMessage m;
  EXPECT_FALSE(a.stream->Read(&m));
  EXPECT_EQ(a.stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControllerServiceTest, WelcomeGivesEachNodeItsOwnPodCidrAndKeepsIt) {
  Agent a = Connect("a");
  Agent b = Connect("b");
  EXPECT_EQ(a.pod_cidr, "10.244.0.0/24");
  EXPECT_EQ(b.pod_cidr, "10.244.1.0/24");
  EXPECT_TRUE(Close(a).ok());
  Agent again = Connect("a");
  EXPECT_EQ(again.pod_cidr, "10.244.0.0/24");
  EXPECT_TRUE(Close(again).ok());
  EXPECT_TRUE(Close(b).ok());
}

TEST_F(ControllerServiceTest, RelayChangesReachConnectedAgentsWithTheirOwnCredentials) {
  const net::Endpoint r1 = *net::Endpoint::Parse("203.0.113.10:3478");
  const net::Endpoint r2 = *net::Endpoint::Parse("203.0.113.11:3478");
  service_.SetRelays({r1}, "0123456789abcdef");
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));  // snapshot
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kSnapshot);
  service_.SetRelays({r1}, "0123456789abcdef");  // unchanged: nothing sent
  service_.SetRelays({r1, r2}, "0123456789abcdef");
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kRelays);
  ASSERT_EQ(m.relays().relays_size(), 2);
  EXPECT_EQ(m.relays().relays(1).address().ip(), "203.0.113.11");
  EXPECT_EQ(m.relays().relays(1).address().port(), 3478u);
  // TURN REST credentials for this node: "<expiry>:a", about a day ahead.
  const std::string& user = m.relays().relays(0).username();
  ASSERT_TRUE(absl::EndsWith(user, ":a")) << user;
  int64_t expiry = 0;
  ASSERT_TRUE(absl::SimpleAtoi(user.substr(0, user.size() - 2), &expiry));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(expiry - now, 24 * 3600, 60);
  EXPECT_FALSE(m.relays().relays(0).password().empty());
  service_.SetRelays({r2}, "0123456789abcdef");  // r1 went away
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.relays().relays_size(), 1);
  EXPECT_EQ(m.relays().relays(0).address().ip(), "203.0.113.11");
  service_.RenewRelayCredentials();
  ASSERT_TRUE(a.stream->Read(&m));
  EXPECT_EQ(m.relays().relays_size(), 1);
  EXPECT_TRUE(Close(a).ok());
}

TEST_F(ControllerServiceTest, SnapshotThenDeltasThenDirectives) {
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kSnapshot);
  EXPECT_EQ(m.snapshot().nodes_size(), 0);
  ASSERT_TRUE(a.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.100", a.pod_cidr)));
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);  // its own node, as everyone sees it
  EXPECT_EQ(m.delta().version(), 1u);

  Agent b = Connect("b");
  ASSERT_TRUE(b.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kSnapshot);
  ASSERT_EQ(m.snapshot().nodes_size(), 1);
  EXPECT_EQ(m.snapshot().nodes(0).name(), "a");

  ASSERT_TRUE(b.stream->Write(Report("b", v1::NAT_MAPPING_ENDPOINT_DEPENDENT, "198.51.100.23", b.pod_cidr)));
  // a hears of b, then gets the directive for the pair: public ↔ hard, b initiates.
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);
  EXPECT_EQ(m.delta().upserted(0).name(), "b");
  ASSERT_TRUE(a.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kDirective);
  EXPECT_EQ(m.directive().peer(), "b");
  EXPECT_EQ(m.directive().path(), v1::PATH_KIND_DIRECT);
  EXPECT_FALSE(m.directive().initiate());
  EXPECT_NE(m.directive().reason().find("b initiates"), std::string::npos) << m.directive().reason();
  // and b gets the same decision from its side.
  ASSERT_TRUE(b.stream->Read(&m));  // its own delta
  ASSERT_TRUE(b.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kDirective);
  EXPECT_EQ(m.directive().peer(), "a");
  EXPECT_TRUE(m.directive().initiate());
  EXPECT_TRUE(Close(a).ok());
  EXPECT_TRUE(Close(b).ok());
}

TEST_F(ControllerServiceTest, ReconnectResumesWithOnlyTheMissedDeltas) {
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));
  a.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.100", a.pod_cidr));
  ASSERT_TRUE(a.stream->Read(&m));
  const uint64_t seen = m.delta().version();
  EXPECT_TRUE(Close(a).ok());

  Agent b = Connect("b");
  ASSERT_TRUE(b.stream->Read(&m));
  b.stream->Write(Report("b", v1::NAT_MAPPING_NONE, "198.51.100.101", b.pod_cidr));
  ASSERT_TRUE(b.stream->Read(&m));

  Agent again = Connect("a", "secret", seen);
  ASSERT_TRUE(again.stream->Read(&m));
  ASSERT_EQ(m.msg_case(), v1::ControllerMessage::kDelta) << "a resume point the log covers gets deltas, not a snapshot";
  EXPECT_EQ(m.delta().upserted(0).name(), "b");
  EXPECT_TRUE(Close(again).ok());
  EXPECT_TRUE(Close(b).ok());
  EXPECT_EQ(service_.Snapshot().nodes_size(), 2) << "state survives agents disconnecting";
}

TEST_F(ControllerServiceTest, ReplayedVersionsAndForeignNodesAreRefusedWithoutLosingState) {
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));
  a.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.100", a.pod_cidr));
  ASSERT_TRUE(a.stream->Read(&m));

  Agent future = Connect("c", "secret", 999, /*welcomed=*/false);
  EXPECT_FALSE(future.stream->Read(&m));
  grpc::Status s = future.stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("newer than"), std::string::npos) << s.error_message();

  a.stream->Write(Report("someone-else", v1::NAT_MAPPING_NONE, "198.51.100.9", a.pod_cidr));
  EXPECT_FALSE(a.stream->Read(&m));
  EXPECT_EQ(a.stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(service_.Snapshot().nodes_size(), 1);
  EXPECT_EQ(service_.Snapshot().nodes(0).name(), "a");
}

TEST(ControllerStateTest, ARestartedControllerResumesItsAgents) {
  char tmpl[] = "/tmp/weft-controller-state-XXXXXX";
  const std::string file = std::string(mkdtemp(tmpl)) + "/state";
  auto pods = [] { return *PodCidrAllocator::Create(*net::IpPrefix::Parse("10.244.0.0/16"), 24); };
  uint64_t version = 0;
  {
    ControllerService first("secret", pods());
    ASSERT_TRUE(first.UseStateFile(file).ok());
    grpc::ServerBuilder b;
    b.RegisterService(&first);
    auto server = b.BuildAndStart();
    auto stub = v1::EndpointService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
    grpc::ClientContext ctx;
    auto s = stub->Connect(&ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node("a");
    hello.mutable_hello()->set_token("secret");
    s->Write(hello);
    v1::ControllerMessage m;
    s->Read(&m);  // welcome
    v1::ControllerMessage snapshot;
    s->Read(&snapshot);
    v1::AgentMessage node;
    node.mutable_node()->set_name("a");
    node.mutable_node()->add_pod_cidrs(m.welcome().pod_cidrs(0));
    s->Write(node);
    s->Read(&m);  // delta
    version = m.delta().version();
    s->WritesDone();
    while (s->Read(&m)) {
    }
    s->Finish();
    server->Shutdown();
  }
  ControllerService second("secret", pods());
  ASSERT_TRUE(second.UseStateFile(file).ok());
  auto snap = second.Snapshot();
  EXPECT_EQ(snap.version(), version);
  ASSERT_EQ(snap.nodes_size(), 1);
  EXPECT_EQ(snap.nodes(0).name(), "a");
  std::filesystem::remove_all(std::filesystem::path(file).parent_path());
}

// Dual-stack standalone: a block of each cluster CIDR per node, kept across a restart.
TEST(ControllerStateTest, DualStackNodesGetABlockOfEachFamilyKeptAcrossARestart) {
  char tmpl[] = "/tmp/weft-controller-state-XXXXXX";
  const std::string file = std::string(mkdtemp(tmpl)) + "/state";
  auto pods = [] {
    return std::vector<PodCidrAllocator>{*PodCidrAllocator::Create(*net::IpPrefix::Parse("10.244.0.0/16"), 24),
                                         *PodCidrAllocator::Create(*net::IpPrefix::Parse("fd00:10:244::/56"), 64)};
  };
  auto welcome = [](ControllerService& svc, const std::string& node) {
    grpc::ServerBuilder b;
    b.RegisterService(&svc);
    auto server = b.BuildAndStart();
    auto stub = v1::EndpointService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
    grpc::ClientContext ctx;
    auto s = stub->Connect(&ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node(node);
    hello.mutable_hello()->set_token("secret");
    s->Write(hello);
    v1::ControllerMessage m;
    EXPECT_TRUE(s->Read(&m));
    ctx.TryCancel();
    (void)s->Finish();
    server->Shutdown();
    return m.welcome();
  };
  {
    ControllerService first("secret", pods());
    ASSERT_TRUE(first.UseStateFile(file).ok());
    const v1::Welcome a = welcome(first, "a");
    ASSERT_EQ(a.pod_cidrs_size(), 2);
    EXPECT_EQ(a.pod_cidrs(0), "10.244.0.0/24");
    EXPECT_EQ(a.pod_cidrs(1), "fd00:10:244::/64");
    ASSERT_EQ(a.cluster_cidrs_size(), 2);
    EXPECT_EQ(a.cluster_cidrs(1), "fd00:10:244::/56");
    const v1::Welcome b = welcome(first, "b");
    ASSERT_EQ(b.pod_cidrs_size(), 2);
    EXPECT_EQ(b.pod_cidrs(0), "10.244.1.0/24");
    EXPECT_EQ(b.pod_cidrs(1), "fd00:10:244:1::/64");
  }
  ControllerService second("secret", pods());
  ASSERT_TRUE(second.UseStateFile(file).ok());
  const v1::Welcome b = welcome(second, "b");  // asks for nothing: the state file keeps its blocks
  ASSERT_EQ(b.pod_cidrs_size(), 2);
  EXPECT_EQ(b.pod_cidrs(0), "10.244.1.0/24");
  EXPECT_EQ(b.pod_cidrs(1), "fd00:10:244:1::/64");
  std::filesystem::remove_all(std::filesystem::path(file).parent_path());
}

TEST_F(ControllerServiceTest, OversizedMessagesAreRefused) {
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));
  v1::AgentMessage big = Report("a", v1::NAT_MAPPING_NONE, "198.51.100.100", a.pod_cidr);
  big.mutable_node()->mutable_nat()->set_reason(std::string(2 << 20, 'x'));
  a.stream->Write(big);
  EXPECT_FALSE(a.stream->Read(&m));
  EXPECT_EQ(a.stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(service_.Snapshot().nodes_size(), 0);
}

// A rogue admitted agent: what it claims beyond its own node never reaches its peers.
TEST_F(ControllerServiceTest, ARogueAgentsClaimsAreRefusedWithAClearStatus) {
  Agent honest = Reported("honest", "198.51.100.1");
  v1::ControllerMessage m;
  const v1::Snapshot before = service_.Snapshot();

  struct Attack {
    std::string what;
    std::function<void(v1::NodeInfo&)> spoil;
    grpc::StatusCode code;
    std::string says;
  };
  const std::string honest_cidr = honest.pod_cidr;
  const std::vector<Attack> attacks = {
      {"another node's pod CIDR", [&](v1::NodeInfo& n) { n.add_pod_cidrs(honest_cidr); },
       grpc::StatusCode::PERMISSION_DENIED, "the controller assigned it"},
      {"the default route in halves",
       [](v1::NodeInfo& n) {
         n.add_pod_cidrs("0.0.0.0/1");
         n.add_pod_cidrs("128.0.0.0/1");
       },
       grpc::StatusCode::PERMISSION_DENIED, "reported pod CIDRs"},
      {"only someone else's CIDR", [&](v1::NodeInfo& n) { n.set_pod_cidrs(0, honest_cidr); },
       grpc::StatusCode::PERMISSION_DENIED, "the controller assigned it"},
      {"a duplicate key", [](v1::NodeInfo& n) { n.set_wireguard_public_key(std::string(32, 'h')); },
       grpc::StatusCode::PERMISSION_DENIED, "the WireGuard key of node \"honest\""},
      {"100 candidates",
       [](v1::NodeInfo& n) {
         for (int i = 0; i < 100; ++i) {
           auto* c = n.add_candidates();
           c->set_type(v1::CANDIDATE_TYPE_HOST);
           c->mutable_endpoint()->set_ip("192.0.2." + std::to_string(i + 1));
           c->mutable_endpoint()->set_port(51820);
         }
       },
       grpc::StatusCode::INVALID_ARGUMENT, "100 candidates: at most 16"},
      {"a loopback reflexive address", [](v1::NodeInfo& n) { n.mutable_nat()->mutable_reflexive()->set_ip("127.0.0.1"); },
       grpc::StatusCode::INVALID_ARGUMENT, "nat.reflexive"},
  };
  for (const auto& attack : attacks) {
    Agent rogue = Connect("rogue");
    ASSERT_TRUE(rogue.stream->Read(&m));  // snapshot
    v1::AgentMessage msg = Report("rogue", v1::NAT_MAPPING_NONE, "198.51.100.66", rogue.pod_cidr);
    attack.spoil(*msg.mutable_node());
    rogue.stream->Write(msg);
    while (rogue.stream->Read(&m)) {
    }
    grpc::Status s = rogue.stream->Finish();
    EXPECT_EQ(s.error_code(), attack.code) << attack.what << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(attack.says), std::string::npos) << attack.what << ": " << s.error_message();
    EXPECT_EQ(service_.Snapshot().SerializeAsString(), before.SerializeAsString()) << attack.what;
  }
  EXPECT_NE(service_.MetricsText().find("outcome=\"refused\"} 6"), std::string::npos) << service_.MetricsText();
  // The honest agent heard nothing of any of it (its next message is the rogue's
  // departure... nothing at all: a rogue that never published leaves no delta).
  EXPECT_TRUE(Close(honest).ok());
}

TEST_F(ControllerServiceTest, HealthSpeaksOnlyOfTheNodesOwnPeers) {
  Agent a = Connect("a");
  Agent b = Connect("b");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.1", a.pod_cidr)));
  ASSERT_TRUE(b.stream->Write(Report("b", v1::NAT_MAPPING_NONE, "198.51.100.2", b.pod_cidr)));
  for (int i = 0; i < 200 && service_.Snapshot().nodes_size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  v1::AgentMessage h;
  for (const char* peer : {"b", "a", "ghost", "b"}) h.mutable_health()->add_peers()->set_peer(peer);
  ASSERT_TRUE(a.stream->Write(h));
  for (int i = 0; i < 200 && service_.MetricsText().find("dropped_health_entry\"} 3") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(service_.MetricsText().find("dropped_health_entry\"} 3"), std::string::npos) << service_.MetricsText();
  auto view = service_.View("a");
  ASSERT_TRUE(view.has_value());
  int with_health = 0;
  for (const auto& p : view->peers) with_health += p.health.has_value() ? 1 : 0;
  EXPECT_EQ(with_health, 1);
  EXPECT_TRUE(Close(a).ok());
  EXPECT_TRUE(Close(b).ok());
}

// A peer sees a node at another port than STUN did, while the node's NAT was thought to
// keep one port for all: the node is asked to probe a fresh flow, once per sighting.
TEST_F(ControllerServiceTest, APeerSeeingANodeAtAnotherPortAsksThatNodeToReprobeOncePerSighting) {
  Agent a = Connect("a");
  Agent b = Connect("b");
  ASSERT_TRUE(a.stream->Write(Report("a", v1::NAT_MAPPING_ENDPOINT_INDEPENDENT, "198.51.100.20", a.pod_cidr)));
  ASSERT_TRUE(b.stream->Write(Report("b", v1::NAT_MAPPING_NONE, "198.51.100.2", b.pod_cidr)));
  for (int i = 0; i < 200 && service_.Snapshot().nodes_size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto sighting = [&](int port) {
    v1::AgentMessage h;
    auto* p = h.mutable_health()->add_peers();
    p->set_peer("a");
    p->set_path(v1::PATH_KIND_DIRECT);
    p->mutable_endpoint()->set_ip("198.51.100.20");
    p->mutable_endpoint()->set_port(port);
    return h;
  };
  ASSERT_TRUE(b.stream->Write(sighting(51820)));  // as STUN says: nothing to ask
  ASSERT_TRUE(b.stream->Write(sighting(40312)));
  ASSERT_TRUE(b.stream->Write(sighting(40312)));  // the same sighting again: asked once
  ASSERT_TRUE(b.stream->Write(sighting(40999)));
  std::vector<std::string> asked;
  v1::ControllerMessage m;
  for (int i = 0; i < 50 && asked.size() < 2 && a.stream->Read(&m); ++i) {
    if (m.has_reprobe()) asked.push_back(m.reprobe().reason());
  }
  EXPECT_THAT(asked, testing::ElementsAre("peer b sees 198.51.100.20:40312, STUN sees 198.51.100.20:51820",
                                          "peer b sees 198.51.100.20:40999, STUN sees 198.51.100.20:51820"));
  // Another address than STUN said, directly (a new uplink): asked too; through the
  // relay (the proxy's address) or at one of its own host addresses (a local path): not.
  auto moved = [&](const std::string& ip, v1::PathKind path) {
    v1::AgentMessage h = sighting(51820);
    h.mutable_health()->mutable_peers(0)->set_path(path);
    h.mutable_health()->mutable_peers(0)->mutable_endpoint()->set_ip(ip);
    return h;
  };
  ASSERT_TRUE(b.stream->Write(moved("127.0.0.1", v1::PATH_KIND_RELAY)));
  ASSERT_TRUE(b.stream->Write(moved("198.51.100.40", v1::PATH_KIND_DIRECT)));
  for (int i = 0; i < 50 && asked.size() < 3 && a.stream->Read(&m); ++i) {
    if (m.has_reprobe()) asked.push_back(m.reprobe().reason());
  }
  ASSERT_EQ(asked.size(), 3u);
  EXPECT_EQ(asked[2], "peer b sees 198.51.100.40:51820, STUN sees 198.51.100.20:51820");
  // The node reports hard now: the same sighting is no reason to ask.
  ASSERT_TRUE(a.stream->Write(Report("a", v1::NAT_MAPPING_ENDPOINT_DEPENDENT, "198.51.100.20", a.pod_cidr)));
  auto view = service_.View("a");
  for (int i = 0; i < 200 && view && view->info.nat().mapping() != v1::NAT_MAPPING_ENDPOINT_DEPENDENT; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    view = service_.View("a");
  }
  ASSERT_TRUE(b.stream->Write(sighting(41000)));
  auto seen_by_b = [&] {
    auto v = service_.View("b");
    for (const auto& p : v ? v->peers : std::vector<PeerView>{}) {
      if (p.health && p.health->endpoint().port() == 41000) return true;
    }
    return false;
  };
  for (int i = 0; i < 200 && !seen_by_b(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(seen_by_b());
  a.stream->WritesDone();
  int more = 0;
  while (a.stream->Read(&m)) more += m.has_reprobe() ? 1 : 0;
  EXPECT_EQ(more, 0);
  (void)a.stream->Finish();
  EXPECT_TRUE(Close(b).ok());
}

TEST_F(ControllerServiceTest, MessagesPastTheRateAreDroppedAndCounted) {
  Agent a = Connect("a");
  v1::ControllerMessage m;
  ASSERT_TRUE(a.stream->Read(&m));  // snapshot
  v1::AgentMessage h;
  h.mutable_health();
  const int sent = 100;
  for (int i = 0; i < sent; ++i) ASSERT_TRUE(a.stream->Write(h));
  // Burst 40, then 10 a second; past the rate each message is dropped and the stream
  // reads again at the next 100 ms tick: ~20 read a second, half of them dropped.
  auto dropped = [&] {
    const std::string metrics = service_.MetricsText();
    const std::string key = "outcome=\"dropped_rate\"} ";
    const auto at = metrics.find(key);
    return at == std::string::npos ? -1 : std::atoi(metrics.c_str() + at + key.size());
  };
  int last = -1;
  for (int i = 0; i < 150; ++i) {  // bounded: 15 s; until it stops moving
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int now = dropped();
    if (now == last && now > 0) break;
    last = now;
  }
  EXPECT_GE(dropped(), 20);
  EXPECT_LE(dropped(), sent - 40);
  // The stream is still up and served once it is back under the rate.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ASSERT_TRUE(a.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.1", a.pod_cidr)));
  ASSERT_TRUE(a.stream->Read(&m));
  EXPECT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);
  EXPECT_TRUE(Close(a).ok());
}

TEST_F(ControllerServiceTest, ANodesKeyIsPinnedUntilTheAdminForgetsIt) {
  Agent a = Reported("a", "198.51.100.1");
  EXPECT_TRUE(Close(a).ok());
  v1::ControllerMessage m;

  // A valid token, node a's name, another key: refused, nothing changed.
  Agent thief = Connect("a");
  ASSERT_TRUE(thief.stream->Read(&m));
  v1::AgentMessage stolen = Report("a", v1::NAT_MAPPING_NONE, "198.51.100.66", thief.pod_cidr);
  stolen.mutable_node()->set_wireguard_public_key(std::string(32, 'T'));
  ASSERT_TRUE(thief.stream->Write(stolen));
  while (thief.stream->Read(&m)) {
  }
  grpc::Status s = thief.stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("joined before with another WireGuard key"), std::string::npos) << s.error_message();
  ASSERT_EQ(service_.Snapshot().nodes_size(), 1);
  EXPECT_EQ(service_.Snapshot().nodes(0).wireguard_public_key(), std::string(32, 'a'));

  // The same key again (an agent restart): fine.
  Agent again = Connect("a");
  ASSERT_TRUE(again.stream->Read(&m));
  ASSERT_TRUE(again.stream->Write(Report("a", v1::NAT_MAPPING_NONE, "198.51.100.2", again.pod_cidr)));
  ASSERT_TRUE(again.stream->Read(&m));
  EXPECT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);
  EXPECT_TRUE(Close(again).ok());

  // Reinstalled, forgotten by the admin: the new key is taken, with the same pod CIDR.
  EXPECT_TRUE(service_.Forget("a"));
  EXPECT_FALSE(service_.Forget("a"));
  Agent reinstalled = Connect("a");
  EXPECT_EQ(reinstalled.pod_cidr, thief.pod_cidr);
  ASSERT_TRUE(reinstalled.stream->Read(&m));
  ASSERT_TRUE(reinstalled.stream->Write(stolen));
  ASSERT_TRUE(reinstalled.stream->Read(&m));
  EXPECT_EQ(m.msg_case(), v1::ControllerMessage::kDelta);
  EXPECT_EQ(service_.Snapshot().nodes(0).wireguard_public_key(), std::string(32, 'T'));
  EXPECT_TRUE(Close(reinstalled).ok());
}

TEST_F(ControllerServiceTest, AConnectionThatNeverJoinsIsEndedAtTheHelloDeadline) {
  service_.SetHelloDeadline(std::chrono::milliseconds(300));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub_->Connect(&ctx);  // says nothing
  const auto start = std::chrono::steady_clock::now();
  v1::ControllerMessage m;
  EXPECT_FALSE(stream->Read(&m));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("no Hello"), std::string::npos) << s.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  // An agent that joins in time stays.
  Agent a = Connect("a");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(service_.connected(), 1u);
  EXPECT_TRUE(Close(a).ok());
}

// Standalone node credentials: a node's own token admits that node only; with
// node tokens only, the shared join token admits nobody.
TEST_F(ControllerServiceTest, ANodesOwnTokenAdmitsThatNodeOnly) {
  const std::string a_token = NodeToken("secret", "a");
  EXPECT_EQ(a_token.rfind("wn1.", 0), 0u);
  EXPECT_NE(a_token, NodeToken("secret", "b"));
  EXPECT_NE(a_token, NodeToken("other-secret", "a"));
  Agent a = Connect("a", a_token);
  EXPECT_FALSE(a.pod_cidr.empty());
  EXPECT_TRUE(Close(a).ok());
  Agent b = Connect("b", a_token, 0, /*welcomed=*/false);
  v1::ControllerMessage m;
  EXPECT_FALSE(b.stream->Read(&m));
  EXPECT_EQ(b.stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  service_.SetNodeTokensOnly(true);
  Agent shared = Connect("c", "secret", 0, /*welcomed=*/false);
  EXPECT_FALSE(shared.stream->Read(&m));
  grpc::Status s = shared.stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("--print-node-token"), std::string::npos) << s.error_message();
  Agent again = Connect("a", a_token);
  EXPECT_FALSE(again.pod_cidr.empty());
  EXPECT_TRUE(Close(again).ok());
}

}  // namespace
}  // namespace weft::controller
