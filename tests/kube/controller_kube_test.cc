// weft-controller in Kubernetes mode, the real binary, against the fake API server:
// admission by TokenReview, WeftNode status, Lease leader election with a standby.
// Agents are played by gRPC clients in this process (the lab tests run real agents).
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <atomic>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/turn/turn_credentials.h"
#include "lib/testing/free_port.h"
#include "tests/kube/fake_apiserver.h"
#include "tests/lab/child_process.h"
#include "weft/v1/weft.grpc.pb.h"

namespace weft {
namespace {

using nlohmann::json;
using testing::FakeApiServer;

constexpr char kAgentSa[] = "system:serviceaccount:kube-system:weft-agent";
constexpr char kWeftNodes[] = "/apis/weft.dev/v1alpha1/weftnodes/";

template <typename F>
bool Eventually(F f, int ms = 10000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

struct Controller {
  int grpc_port = weft::testing::FreeLoopbackPort(SOCK_STREAM);
  int status_port = weft::testing::FreeLoopbackPort(SOCK_STREAM);
  std::unique_ptr<lab::ChildProcess> proc;
  std::string log;

  void Start(const std::string& api, const std::string& identity, const std::string& token_file,
             const std::vector<std::string>& extra = {}) {
    log = absl::StrCat(::testing::TempDir(), "/controller-", identity, "-", getpid(), ".log");
    unlink(log.c_str());
    std::vector<std::string> argv{WEFT_CONTROLLER_BINARY, "--kubernetes", "--kube-api", api, "--kube-token-file",
                                 token_file, "--identity", identity, "--insecure", "--listen",
                                 absl::StrCat("127.0.0.1:", grpc_port), "--status-listen",
                                 absl::StrCat("127.0.0.1:", status_port), "--cluster-cidr", "10.244.0.0/16",
                                 "--lease-duration-ms", "3000", "--status-interval-ms", "500",
                                 "--aws-node-poll-ms", "200"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<lab::ChildProcess>("", argv, log);
  }
  bool Ready() const {
    httplib::Client c("127.0.0.1", status_port);
    c.set_connection_timeout(0, 200000);
    auto r = c.Get("/readyz");
    return r && r->status == 200;
  }
  std::string Log() const {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

// Agents' tokens are JWTs, as the kubelet projects them (the controller refuses anything
// else without a review); tests name them ("agent-n1"), the fake API server knows each.
std::map<std::string, std::string>& NamedTokens() {
  static auto* m = new std::map<std::string, std::string>;
  return *m;
}

// A projected token's shape for `user` (unsigned: the fake API server reviews it by value).
std::string ProjectedJwt(const std::string& name, const testing::FakeApiServer::User& user) {
  json payload = {{"aud", user.audiences}, {"sub", user.username}, {"jti", name},
                  {"exp", absl::ToUnixSeconds(absl::Now()) + 3600}};
  auto pod = user.extra.find("authentication.kubernetes.io/pod-name");
  auto uid = user.extra.find("authentication.kubernetes.io/pod-uid");
  if (pod != user.extra.end()) {
    payload["kubernetes.io"] = {{"namespace", "kube-system"},
                                {"pod", {{"name", pod->second.at(0)}, {"uid", uid != user.extra.end() ? uid->second.at(0) : ""}}}};
  }
  return absl::WebSafeBase64Escape(R"({"alg":"RS256","kid":"fake"})") + "." + absl::WebSafeBase64Escape(payload.dump()) +
         ".ZmFrZQ";
}

// One agent's stream, driven by the test.
struct Agent {
  std::unique_ptr<v1::EndpointService::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream;
  std::vector<std::string> pod_cidrs;  // the Welcome's: what an honest agent reports

  explicit Agent(int port) {
    stub = v1::EndpointService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stream = stub->Connect(&ctx);
  }
  // Hello; returns the Welcome, or the status the controller ended the stream with.
  absl::StatusOr<v1::Welcome> Join(const std::string& node, const std::string& token, uint64_t resume = 0,
                                   const std::string& epoch = "") {
    v1::AgentMessage m;
    m.mutable_hello()->set_node(node);
    auto named = NamedTokens().find(token);
    m.mutable_hello()->set_token(named != NamedTokens().end() ? named->second : token);
    m.mutable_hello()->set_resume_version(resume);
    m.mutable_hello()->set_resume_epoch(epoch);
    stream->Write(m);
    v1::ControllerMessage in;
    if (stream->Read(&in) && in.has_welcome()) {
      pod_cidrs.assign(in.welcome().pod_cidrs().begin(), in.welcome().pod_cidrs().end());
      return in.welcome();
    }
    grpc::Status s = stream->Finish();
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  // The next RelayList, skipping other messages (bounded: 20 messages).
  std::optional<v1::RelayList> NextRelays() {
    for (int i = 0; i < 20; ++i) {
      v1::ControllerMessage in;
      if (!stream->Read(&in)) return std::nullopt;
      if (in.has_relays()) return in.relays();
    }
    return std::nullopt;
  }
  v1::ControllerMessage Next() {
    v1::ControllerMessage in;
    stream->Read(&in);
    return in;
  }
  void Report(const std::string& node, uint8_t key_byte, v1::NatMapping mapping, const std::string& ip) {
    v1::AgentMessage m;
    auto* n = m.mutable_node();
    n->set_name(node);
    n->set_wireguard_public_key(std::string(32, static_cast<char>(key_byte)));
    for (const auto& c : pod_cidrs) n->add_pod_cidrs(c);
    n->mutable_nat()->set_mapping(mapping);
    n->mutable_nat()->set_filtering(v1::NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT);
    n->mutable_nat()->set_public_ip(ip);
    n->mutable_nat()->set_reason("test verdict");
    if (mapping != v1::NAT_MAPPING_ENDPOINT_DEPENDENT) {
      n->mutable_nat()->mutable_reflexive()->set_ip(ip);
      n->mutable_nat()->mutable_reflexive()->set_port(51820);
    }
    stream->Write(m);
  }
};

// One unauthenticated connection: a Hello with a forged token, then whatever comes back.
class Flooder : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  Flooder(v1::EndpointService::Stub* stub, const std::string& token, std::atomic<int>* done) : done_(done) {
    hello_.mutable_hello()->set_node("n1");
    hello_.mutable_hello()->set_token(token);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub->async()->Connect(&ctx_, this);
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&in_);
  }
  void OnDone(const grpc::Status&) override { done_->fetch_add(1); }

 private:
  grpc::ClientContext ctx_;
  v1::AgentMessage hello_;
  v1::ControllerMessage in_;
  std::atomic<int>* done_;
};

int Threads(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

class ControllerKubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeApiServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    api_ = *std::move(s);
    api_->AddToken("controller-token", {.username = "system:serviceaccount:kube-system:weft-controller"});
    NamedTokens().clear();
    // Each agent's token is bound to its Pod of the agent DaemonSet, as the kubelet
    // projects it: "agent-N" as 1.30+ reviews it (the node named too), "agent129-N" as
    // 1.29 does (only the Pod).
    for (const char* n : {"n1", "n2", "n3", "ghost"}) {
      const std::string uid = AddAgentPod(absl::StrCat("weft-agent-", n), n, "weft-agent");
      AddAgentToken(absl::StrCat("agent-", n),
                     {.username = kAgentSa, .audiences = {"weft-controller"},
                      .extra = {{"authentication.kubernetes.io/node-name", {n}},
                                {"authentication.kubernetes.io/pod-name", {absl::StrCat("weft-agent-", n)}},
                                {"authentication.kubernetes.io/pod-uid", {uid}}}});
      AddAgentToken(absl::StrCat("agent129-", n),
                     {.username = kAgentSa, .audiences = {"weft-controller"},
                      .extra = {{"authentication.kubernetes.io/pod-name", {absl::StrCat("weft-agent-", n)}},
                                {"authentication.kubernetes.io/pod-uid", {uid}}}});
    }
    const std::string other = AddAgentPod("not-the-agent", "n1", "something-else");
    AddAgentToken("agent-other-pod", {.username = kAgentSa, .audiences = {"weft-controller"},
                                       .extra = {{"authentication.kubernetes.io/pod-name", {"not-the-agent"}},
                                                 {"authentication.kubernetes.io/pod-uid", {other}}}});
    AddAgentToken("agent-stale-pod", {.username = kAgentSa, .audiences = {"weft-controller"},
                                       .extra = {{"authentication.kubernetes.io/pod-name", {"weft-agent-n1"}},
                                                 {"authentication.kubernetes.io/pod-uid", {"uid-of-a-deleted-pod"}}}});
    NamedTokens()["forged-jwt"] = ProjectedJwt("forged-jwt", {.username = kAgentSa, .audiences = {"weft-controller"},
                                                               .extra = {{"authentication.kubernetes.io/pod-name", {"weft-agent-n1"}},
                                                                         {"authentication.kubernetes.io/pod-uid", {"u"}}}});
    AddAgentToken("agent-wrong-reviewed-audience",
                  {.username = kAgentSa, .audiences = {"weft-controller"},
                   .extra = {{"authentication.kubernetes.io/pod-name", {"weft-agent-n1"}},
                             {"authentication.kubernetes.io/pod-uid", {"u"}}},
                   .reviewed_audiences = std::vector<std::string>{"https://kubernetes.default.svc"}});
    AddAgentToken("agent-unbound", {.username = kAgentSa, .audiences = {"weft-controller"}});
    AddAgentToken("default-sa", {.username = "system:serviceaccount:default:default", .audiences = {"weft-controller"}});
    AddAgentToken("api-audience", {.username = kAgentSa, .audiences = {"https://kubernetes.default.svc"}});
    AddNode("n1", "10.244.1.0/24", "aws:///us-east-1a/i-0000000000000001");
    AddNode("n2", "10.244.2.0/24", "");
    AddNode("n3", "", "");
    token_file_ = absl::StrCat(::testing::TempDir(), "/controller-token-", getpid());
    std::ofstream(token_file_) << "controller-token\n";
  }
  void TearDown() override { unlink(token_file_.c_str()); }

  void AddAgentToken(const std::string& name, testing::FakeApiServer::User user) {
    const std::string jwt = ProjectedJwt(name, user);
    NamedTokens()[name] = jwt;
    api_->AddToken(jwt, std::move(user));
  }
  // A Pod of DaemonSet `owner` in kube-system on `node`; its UID.
  std::string AddAgentPod(const std::string& name, const std::string& node, const std::string& owner) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", name},
                  {"namespace", "kube-system"},
                  {"ownerReferences",
                   {{{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"}, {"name", owner}, {"uid", "ds-uid"}, {"controller", true}}}}}},
                {"spec", {{"nodeName", node}, {"containers", {{{"name", "agent"}, {"image", "weft"}}}}}}};
    auto put = api_->Put("/api/v1/namespaces/kube-system/pods/" + name, pod);
    EXPECT_TRUE(put.ok()) << put.status();
    return put.ok() ? (*put)["metadata"].value("uid", "") : "";
  }
  void AddNode(const std::string& name, const std::string& cidr, const std::string& provider) {
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}, {"spec", json::object()}};
    if (!cidr.empty()) node["spec"] = {{"podCIDR", cidr}, {"podCIDRs", {cidr}}};
    if (!provider.empty()) node["spec"]["providerID"] = provider;
    ASSERT_TRUE(api_->Put("/api/v1/nodes/" + name, node).ok());
  }
  std::optional<json> WeftNodeStatus(const std::string& name) {
    auto o = api_->Get(kWeftNodes + name);
    if (!o || !o->contains("status")) return std::nullopt;
    return (*o)["status"];
  }

  std::unique_ptr<FakeApiServer> api_;
  std::string token_file_;
};

TEST_F(ControllerKubeTest, AdmitsOnlyTheAgentServiceAccountForAnExistingNode) {
  Controller c;
  c.Start(api_->url(), "controller-a", token_file_);
  ASSERT_TRUE(Eventually([&] { return c.Ready(); })) << c.Log();
  struct Case {
    std::string node, token;
    absl::StatusCode code;
    std::string says;
  } cases[] = {
      {"n1", "forged", absl::StatusCode::kUnauthenticated, "not a JWT"},
      {"n1", "", absl::StatusCode::kUnauthenticated, "no token"},
      {"n1", "api-audience", absl::StatusCode::kUnauthenticated, "not for audience \"weft-controller\""},
      {"n1", "default-sa", absl::StatusCode::kUnauthenticated, "not \"system:serviceaccount:kube-system:weft-agent\"'s"},
      // JWT-shaped, claims in order, signed by nobody: only the API server can tell.
      {"n1", "forged-jwt", absl::StatusCode::kUnauthenticated, "refused the agent's token"},
      // A token bound to a Pod on n1 speaks for n1 only, as 1.30+ and as 1.29 review it.
      {"n2", "agent-n1", absl::StatusCode::kPermissionDenied, "bound to Pod weft-agent-n1 on node \"n1\", not \"n2\""},
      {"n2", "agent129-n1", absl::StatusCode::kPermissionDenied, "on node \"n1\", not \"n2\""},
      {"n1", "agent-unbound", absl::StatusCode::kUnauthenticated, "not bound to a Pod"},
      {"n1", "agent-wrong-reviewed-audience", absl::StatusCode::kUnauthenticated,
       "audiences do not include \"weft-controller\" (status.audiences)"},
      {"n1", "agent-other-pod", absl::StatusCode::kPermissionDenied, "does not belong to DaemonSet weft-agent"},
      {"n1", "agent-stale-pod", absl::StatusCode::kPermissionDenied, "earlier Pod"},
      {"ghost", "agent-ghost", absl::StatusCode::kNotFound, "no Node named \"ghost\""},
      {"n3", "agent-n3", absl::StatusCode::kFailedPrecondition, "no spec.podCIDRs"},
  };
  for (const Case& k : cases) {
    Agent a(c.grpc_port);
    auto w = a.Join(k.node, k.token);
    ASSERT_FALSE(w.ok()) << k.token;
    EXPECT_EQ(w.status().code(), k.code) << k.token << ": " << w.status();
    EXPECT_NE(w.status().message().find(k.says), absl::string_view::npos) << w.status();
  }
  Agent ok129(c.grpc_port);
  ASSERT_TRUE(ok129.Join("n2", "agent129-n2").ok()) << "1.29: the Pod alone binds the token to its node";
  Agent ok(c.grpc_port);
  auto w = ok.Join("n1", "agent-n1");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->pod_cidrs_size(), 1);
  EXPECT_EQ(w->pod_cidrs(0), "10.244.1.0/24");  // from the Node's spec.podCIDRs
  EXPECT_EQ(w->cluster_cidrs(0), "10.244.0.0/16");
  EXPECT_FALSE(w->epoch().empty());
  EXPECT_TRUE(ok.Next().has_snapshot());
}

TEST_F(ControllerKubeTest, WeftNodesAppearAndFollowTheirNodes) {
  Controller c;
  c.Start(api_->url(), "controller-a", token_file_);
  ASSERT_TRUE(Eventually([&] { return c.Ready(); })) << c.Log();
  Agent a1(c.grpc_port), a2(c.grpc_port);
  ASSERT_TRUE(a1.Join("n1", "agent-n1").ok());
  ASSERT_TRUE(a2.Join("n2", "agent-n2").ok());
  a1.Report("n1", 1, v1::NAT_MAPPING_ENDPOINT_INDEPENDENT, "203.0.113.1");
  a2.Report("n2", 2, v1::NAT_MAPPING_NONE, "203.0.113.2");
  ASSERT_TRUE(Eventually([&] {
    auto s1 = WeftNodeStatus("n1");
    auto s2 = WeftNodeStatus("n2");
    return s1 && s2 && (*s1)["peers"].size() == 1 && (*s2)["peers"].size() == 1;
  })) << c.Log();
  auto s1 = *WeftNodeStatus("n1");
  EXPECT_EQ(s1["nat"]["type"], "easy");
  EXPECT_EQ(s1["endpoint"], "203.0.113.1:51820");
  EXPECT_EQ(s1["providerID"], "aws:///us-east-1a/i-0000000000000001");
  EXPECT_EQ(s1["agentConnected"], true);
  EXPECT_EQ(s1["peers"][0]["name"], "n2");
  EXPECT_EQ(s1["peers"][0]["decision"], "direct");
  EXPECT_EQ(s1["peers"][0]["path"], "unknown") << "no health report from the agent yet";
  EXPECT_FALSE(s1["peers"][0]["reason"].get<std::string>().empty());
  EXPECT_EQ((*WeftNodeStatus("n2"))["nat"]["type"], "public");
  // Owned by its Node, so it goes when the Node goes.
  auto obj = api_->Get(std::string(kWeftNodes) + "n1");
  EXPECT_EQ((*obj)["metadata"]["ownerReferences"][0]["uid"], (*api_->Get("/api/v1/nodes/n1"))["metadata"]["uid"]);

  // The data plane's view arrives with the agent's health report.
  v1::AgentMessage h;
  auto* p = h.mutable_health()->add_peers();
  p->set_peer("n2");
  p->set_path(v1::PATH_KIND_DIRECT);
  p->mutable_endpoint()->set_ip("203.0.113.2");
  p->mutable_endpoint()->set_port(51820);
  p->set_last_handshake_unix_ms(1800000000000);
  p->set_rtt_us(1200);
  a1.stream->Write(h);
  ASSERT_TRUE(Eventually([&] { return (*WeftNodeStatus("n1"))["directPeers"] == 1; })) << c.Log();
  s1 = *WeftNodeStatus("n1");
  EXPECT_EQ(s1["peers"][0]["endpoint"], "203.0.113.2:51820");
  EXPECT_EQ(s1["peers"][0]["lastHandshake"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(s1["peers"][0]["rttMicros"], 1200);

  // A change of NAT updates the status; a burst of changes is written at most once per
  // interval (500 ms here).
  const int patches_before = api_->Requests(std::string("PATCH ") + kWeftNodes + "n1/status");
  const auto burst_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i) {
    a1.Report("n1", 1, i % 2 ? v1::NAT_MAPPING_ENDPOINT_INDEPENDENT : v1::NAT_MAPPING_ENDPOINT_DEPENDENT,
              absl::StrCat("203.0.113.", 10 + i));
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  a1.Report("n1", 1, v1::NAT_MAPPING_ENDPOINT_DEPENDENT, "203.0.113.99");
  ASSERT_TRUE(Eventually([&] { return (*WeftNodeStatus("n1"))["nat"]["publicIP"] == "203.0.113.99"; })) << c.Log();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - burst_start).count();
  const int patches = api_->Requests(std::string("PATCH ") + kWeftNodes + "n1/status") - patches_before;
  EXPECT_EQ((*WeftNodeStatus("n1"))["nat"]["type"], "hard");
  EXPECT_LE(patches, static_cast<int>(seconds / 0.5) + 2) << "over " << seconds << " s";

  // The Node is deleted: its peers go from the other nodes' status.
  ASSERT_TRUE(api_->Delete("/api/v1/nodes/n2").ok());
  ASSERT_TRUE(Eventually([&] { return (*WeftNodeStatus("n1"))["peers"].empty(); })) << c.Log();
}

// Issue 6, row (c): on EKS the AWS VPC CNI's randomized SNAT is named, with the fix.
TEST_F(ControllerKubeTest, SnatConditionNamesTheAwsVpcCniAndItsFix) {
  auto aws_node = [&](const std::string& randomize) {
    json env = json::array({{{"name", "AWS_VPC_K8S_CNI_EXTERNALSNAT"}, {"value", "false"}}});
    if (!randomize.empty()) env.push_back({{"name", "AWS_VPC_K8S_CNI_RANDOMIZESNAT"}, {"value", randomize}});
    json container = {{"name", "aws-node"}, {"image", "amazon-k8s-cni"}, {"env", env}};
    json pod_spec = {{"containers", json::array({container})}};
    json ds = {{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"},
               {"metadata", {{"name", "aws-node"}, {"namespace", "kube-system"}}},
               {"spec", {{"template", {{"spec", pod_spec}}}}}};
    ASSERT_TRUE(api_->Put("/apis/apps/v1/namespaces/kube-system/daemonsets/aws-node", ds).ok());
  };
  aws_node("prng");
  Controller c;
  c.Start(api_->url(), "controller-a", token_file_);
  ASSERT_TRUE(Eventually([&] { return c.Ready(); })) << c.Log();
  Agent a1(c.grpc_port);
  ASSERT_TRUE(a1.Join("n1", "agent-n1").ok());
  a1.Report("n1", 1, v1::NAT_MAPPING_ENDPOINT_DEPENDENT, "203.0.113.1");
  auto condition = [&]() -> json {
    auto s = WeftNodeStatus("n1");
    if (!s || !s->contains("conditions")) return json::object();
    return (*s)["conditions"][0];
  };
  ASSERT_TRUE(Eventually([&] { return condition().value("reason", "") == "AwsVpcCni"; })) << c.Log();
  json cond = condition();
  EXPECT_EQ(cond["type"], "SNATRandomized");
  EXPECT_EQ(cond["status"], "True");
  const std::string since = cond.value("lastTransitionTime", "");
  absl::Time parsed;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, since, &parsed, &err)) << "lastTransitionTime " << since << ": " << err;
  EXPECT_NE(cond["message"].get<std::string>().find("AWS_VPC_K8S_CNI_RANDOMIZESNAT=none"), std::string::npos);
  const json sources = (*WeftNodeStatus("n1"))["snat"]["sources"];
  EXPECT_NE(sources.dump().find("aws-node DaemonSet: AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng"), std::string::npos);
  EXPECT_NE(sources.dump().find("aws:///us-east-1a/i-0000000000000001"), std::string::npos);
  // RANDOMIZESNAT unset is the CNI's default, prng: the same finding.
  aws_node("");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(condition()["reason"], "AwsVpcCni");
  // Fixed on the CNI, still hard: what is left is the NAT gateway in front of the node.
  aws_node("none");
  ASSERT_TRUE(Eventually([&] { return condition().value("reason", "") == "NatGateway"; })) << c.Log();
  EXPECT_EQ(condition().value("lastTransitionTime", ""), since) << "still True: the transition time stays";
  EXPECT_NE(condition()["message"].get<std::string>().find("public IP"), std::string::npos);
}

std::vector<std::string> Addresses(const google::protobuf::RepeatedPtrField<v1::RelayServer>& relays) {
  std::vector<std::string> out;
  for (const auto& r : relays) out.push_back(absl::StrCat(r.address().ip(), ":", r.address().port()));
  return out;
}

TEST_F(ControllerKubeTest, RelaysAreTheRelayServicesEndpointsAndChangesReachConnectedAgents) {
  auto node = [&](const std::string& name, const std::string& internal, const std::string& external) {
    json addresses = json::array({{{"type", "InternalIP"}, {"address", internal}}, {{"type", "Hostname"}, {"address", name}}});
    if (!external.empty()) addresses.push_back({{"type", "ExternalIP"}, {"address", external}});
    ASSERT_TRUE(api_->Put("/api/v1/nodes/" + name, {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}},
                                                    {"spec", json::object()}, {"status", {{"addresses", addresses}}}})
                    .ok());
  };
  node("relay-public", "10.0.9.1", "203.0.113.50");
  node("relay-private", "10.0.9.2", "");
  // What the EndpointSlice controller keeps for the chart's relay Service (hostNetwork
  // pods: the endpoint addresses are their nodes' InternalIPs).
  auto endpoint = [](const std::string& node, const std::string& ip, bool ready) {
    return json{{"addresses", {ip}}, {"conditions", {{"ready", ready}, {"serving", ready}, {"terminating", !ready}}},
                {"nodeName", node}, {"targetRef", {{"kind", "Pod"}, {"name", "weft-relay-" + node}}}};
  };
  auto slice = [&](json endpoints) {
    json s = {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
              {"metadata", {{"name", "weft-relay-x7k2p"}, {"labels", {{"kubernetes.io/service-name", "weft-relay"},
                                                                      {"endpointslice.kubernetes.io/managed-by",
                                                                       "endpointslice-controller.k8s.io"}}}}},
              {"addressType", "IPv4"},
              {"ports", {{{"name", "turn-udp"}, {"protocol", "UDP"}, {"port", 3478}},
                         {{"name", "turn-tcp"}, {"protocol", "TCP"}, {"port", 3478}}}},
              {"endpoints", endpoints}};
    ASSERT_TRUE(api_->Put("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/weft-relay-x7k2p", s).ok());
  };
  slice(json::array({endpoint("relay-public", "10.0.9.1", true)}));
  // Another Service's slice in the namespace is not ours.
  ASSERT_TRUE(api_->Put("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-abcde",
                        {{"metadata", {{"labels", {{"kubernetes.io/service-name", "kube-dns"}}}}},
                         {"addressType", "IPv4"}, {"ports", {{{"protocol", "UDP"}, {"port", 53}}}},
                         {"endpoints", {{{"addresses", {"10.96.0.10"}}}}}})
                  .ok());
  // The chart's way: the shared secret in a Secret the controller creates once.
  Controller c;
  c.Start(api_->url(), "controller-a", token_file_,
          {"--relay-service", "kube-system/weft-relay", "--relay-secret", "weft-relay"});
  ASSERT_TRUE(Eventually([&] { return c.Ready(); })) << c.Log();
  ASSERT_TRUE(Eventually([&] { return c.Log().find("relays (Service kube-system/weft-relay): 203.0.113.50:3478") !=
                                      std::string::npos; }))
      << c.Log();
  Agent a1(c.grpc_port);
  auto welcome = a1.Join("n1", "agent-n1");
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_EQ(Addresses(welcome->relays()), std::vector<std::string>{"203.0.113.50:3478"});  // the Node's ExternalIP
  ASSERT_EQ(welcome->relays_size(), 1);
  EXPECT_TRUE(absl::EndsWith(welcome->relays(0).username(), ":n1")) << welcome->relays(0).username();
  auto stored = api_->Get("/api/v1/namespaces/kube-system/secrets/weft-relay");
  ASSERT_TRUE(stored.has_value());
  std::string shared;
  ASSERT_TRUE(absl::Base64Unescape((*stored)["data"]["secret"].get<std::string>(), &shared));
  const std::string& user = welcome->relays(0).username();
  EXPECT_EQ(welcome->relays(0).password(),
            turn::IssueCredentials(shared, "n1", std::stoll(user.substr(0, user.find(':')))).password)
      << "the relays, mounting that Secret, accept what the agents are given";

  // A second relay becomes ready: the connected agent hears of it.
  slice(json::array({endpoint("relay-public", "10.0.9.1", true), endpoint("relay-private", "10.0.9.2", true)}));
  auto relays = a1.NextRelays();
  ASSERT_TRUE(relays.has_value()) << c.Log();
  EXPECT_EQ(Addresses(relays->relays()), (std::vector<std::string>{"10.0.9.2:3478", "203.0.113.50:3478"}));
  // The first one's pod is terminating: gone from the list (its nodes move).
  slice(json::array({endpoint("relay-public", "10.0.9.1", false), endpoint("relay-private", "10.0.9.2", true)}));
  relays = a1.NextRelays();
  ASSERT_TRUE(relays.has_value()) << c.Log();
  EXPECT_EQ(Addresses(relays->relays()), std::vector<std::string>{"10.0.9.2:3478"});
  // Its Node gets a public address: agents are told to use that.
  node("relay-private", "10.0.9.2", "198.51.100.60");
  relays = a1.NextRelays();
  ASSERT_TRUE(relays.has_value()) << c.Log();
  EXPECT_EQ(Addresses(relays->relays()), std::vector<std::string>{"198.51.100.60:3478"});
  // The Service's endpoints are gone: no relays.
  ASSERT_TRUE(api_->Delete("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/weft-relay-x7k2p").ok());
  relays = a1.NextRelays();
  ASSERT_TRUE(relays.has_value()) << c.Log();
  EXPECT_EQ(relays->relays_size(), 0);
}

// 2,000 unauthenticated Hellos in a second: threads stay bounded (no thread per
// connection; TokenReviews on a bounded pool), the Lease is renewed on time (its own
// connection), and an honest agent is admitted within 2 s.
TEST_F(ControllerKubeTest, AFloodOfUnauthenticatedHellosCostsNeitherTheLeaseNorHonestAgents) {
  Controller c;
  c.Start(api_->url(), "controller-a", token_file_);
  ASSERT_TRUE(Eventually([&] { return c.Ready(); })) << c.Log();
  const int threads_before = Threads(c.proc->pid());
  // Sampled all along: the controller's threads, and how long ago the Lease was renewed.
  std::atomic<int> peak{0};
  std::atomic<double> worst_lease_age{0};
  const std::string lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller";
  std::jthread sampler([&](std::stop_token st) {
    while (!st.stop_requested()) {
      peak = std::max(peak.load(), Threads(c.proc->pid()));
      if (auto l = api_->Get(lease); l) {
        absl::Time renewed;
        std::string err;
        if (absl::ParseTime(absl::RFC3339_full, (*l)["spec"].value("renewTime", ""), &renewed, &err)) {
          worst_lease_age = std::max(worst_lease_age.load(), absl::ToDoubleSeconds(absl::Now() - renewed));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto stub = v1::EndpointService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", c.grpc_port), grpc::InsecureChannelCredentials()));
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<Flooder>> flood;
  // Half junk (refused without a review), half forged JWTs with every claim in order
  // (each costs a TokenReview): the worst an outsider can send.
  for (int i = 0; i < 2000; ++i) {
    const std::string token = i % 2 ? "junk" : ProjectedJwt(absl::StrCat("forged-", i), {.username = kAgentSa, .audiences = {"weft-controller"},
                                  .extra = {{"authentication.kubernetes.io/pod-name", {"weft-agent-n1"}},
                                            {"authentication.kubernetes.io/pod-uid", {"u"}}}});
    flood.push_back(std::make_unique<Flooder>(stub.get(), token, &done));
    if (i % 200 == 199) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // 2,000 in 1 s
  }
  // The honest agent, in the middle of it.
  const auto tried = std::chrono::steady_clock::now();
  Agent honest(c.grpc_port);
  auto w = honest.Join("n1", "agent-n1");
  const auto admitted_after = std::chrono::steady_clock::now() - tried;
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_LT(admitted_after, std::chrono::seconds(2))
      << "admitted " << std::chrono::duration_cast<std::chrono::milliseconds>(admitted_after).count() << " ms after it tried";
  for (int i = 0; i < 300 && done.load() < 2000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a few more Lease samples
  sampler.request_stop();
  sampler.join();
  EXPECT_EQ(done.load(), 2000) << "every flooding connection was answered";
  std::printf("2,000 unauthenticated Hellos in 1 s: an honest agent admitted %lld ms after it tried; controller threads %d "
              "before, %d at most; Lease renewed at most %.1f s ago at any sample (lease 3 s)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(admitted_after).count()),
              threads_before, peak.load(), worst_lease_age.load());
  EXPECT_LT(peak, threads_before + 32) << "threads must not grow with connections";
  EXPECT_LT(worst_lease_age, 3.0) << "the Lease must be renewed within its duration";
  EXPECT_TRUE(c.Ready()) << "still the leader";
  flood.clear();
}

TEST_F(ControllerKubeTest, OneLeaderAndTheStandbyTakesOverWithinTheLeaseDuration) {
  Controller a, b;
  a.Start(api_->url(), "controller-a", token_file_);
  ASSERT_TRUE(Eventually([&] { return a.Ready(); })) << a.Log();
  b.Start(api_->url(), "controller-b", token_file_);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(a.Ready());
  EXPECT_FALSE(b.Ready());
  {  // the standby serves no agent
    Agent s(b.grpc_port);
    auto w = s.Join("n1", "agent-n1");
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable) << w.status();
  }
  auto a1 = std::make_unique<Agent>(a.grpc_port);
  auto a2 = std::make_unique<Agent>(a.grpc_port);
  auto w1 = a1->Join("n1", "agent-n1");
  ASSERT_TRUE(w1.ok()) << w1.status();
  ASSERT_TRUE(a2->Join("n2", "agent-n2").ok());
  a1->Report("n1", 1, v1::NAT_MAPPING_ENDPOINT_INDEPENDENT, "203.0.113.1");
  a2->Report("n2", 2, v1::NAT_MAPPING_ENDPOINT_INDEPENDENT, "203.0.113.2");
  ASSERT_TRUE(Eventually([&] {
    auto s1 = WeftNodeStatus("n1");
    auto s2 = WeftNodeStatus("n2");
    return s1 && s2 && s1->contains("report") && s2->contains("report");
  })) << a.Log();
  uint64_t version = 0;
  for (int i = 0; i < 10 && version < 2; ++i) {
    v1::ControllerMessage m = a1->Next();
    if (m.has_snapshot()) version = m.snapshot().version();
    if (m.has_delta()) version = m.delta().version();
  }

  const std::string since = (*WeftNodeStatus("n1"))["conditions"][0].value("lastTransitionTime", "");
  ASSERT_FALSE(since.empty());
  const std::string n1_status = std::string(kWeftNodes) + "n1/status";

  // The leader dies without releasing the Lease. Nobody can tell a dead leader from a
  // live one before its claim runs out: the standby must take over when it does, that
  // is the lease duration after the dead leader's last renewal (at most one renewal
  // period, 375 ms, before it died).
  a.proc->Kill();
  const auto died = std::chrono::steady_clock::now();
  auto last = api_->Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller");
  ASSERT_TRUE(last);
  absl::Time renewed;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, (*last)["spec"]["renewTime"].get<std::string>(), &renewed, nullptr));
  a1.reset();
  a2.reset();
  ASSERT_TRUE(Eventually([&] { return b.Ready(); }, 6000)) << b.Log();
  const auto took = std::chrono::steady_clock::now() - died;
  const absl::Duration after_renewal = absl::Now() - renewed;
  std::printf("standby took over %lld ms after the leader died, %lld ms after its last renewal (lease 3000 ms)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
              static_cast<long long>(absl::ToInt64Milliseconds(after_renewal)));
  // 3 s plus what one Get, one Put and a readiness poll take on a loaded 2-core machine.
  EXPECT_LT(after_renewal, absl::Milliseconds(3000 + 400));

  // An agent resuming from the old leader's epoch gets a snapshot with every node it
  // peered with, as they were: its peers do not change.
  Agent again(b.grpc_port);
  auto w = again.Join("n1", "agent-n1", version, w1->epoch());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_NE(w->epoch(), w1->epoch());
  EXPECT_EQ(w->pod_cidrs(0), "10.244.1.0/24");
  v1::ControllerMessage snap = again.Next();
  ASSERT_TRUE(snap.has_snapshot());
  ASSERT_EQ(snap.snapshot().nodes_size(), 2);
  EXPECT_EQ(snap.snapshot().nodes(0).name(), "n1");
  EXPECT_EQ(snap.snapshot().nodes(1).name(), "n2");
  EXPECT_EQ(snap.snapshot().nodes(1).wireguard_public_key(), std::string(32, '\2'));
  EXPECT_EQ(snap.snapshot().nodes(1).nat().reflexive().ip(), "203.0.113.2");
  auto lease = api_->Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller");
  ASSERT_TRUE(lease);
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "controller-b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  // The new leader writes n1's status (its first write of the term) and the condition
  // keeps the time it last changed, from what the old leader wrote.
  const int patches = api_->Requests("PATCH " + n1_status);
  again.Report("n1", 1, v1::NAT_MAPPING_ENDPOINT_INDEPENDENT, "203.0.113.9");
  ASSERT_TRUE(Eventually([&] { return api_->Requests("PATCH " + n1_status) > patches; })) << b.Log();
  EXPECT_EQ((*WeftNodeStatus("n1"))["conditions"][0].value("lastTransitionTime", ""), since);
}

}  // namespace
}  // namespace weft
