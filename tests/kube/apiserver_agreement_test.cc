// The fake API server (tests/kube/fake_apiserver) and a real kube-apiserver answer the
// same requests the same way, for what Weft relies on: optimistic concurrency on create
// and replace (the Lease election), merge patch, lists and their kinds, watches, bearer
// tokens, and TokenReview with audiences (agent admission). Each case runs against both;
// the real one is skipped when it has not been built (scripts/kube-apiserver.sh), unless
// WEFT_REQUIRE_KUBE_APISERVER is set (the test command sets it).
#include <unistd.h>

#include <fstream>
#include <memory>
#include <stop_token>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/k8s/kube_client.h"
#include "tests/kube/fake_apiserver.h"
#include "tests/kube/real_apiserver.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

// One API server, either kind, with an admin client and a way to get an agent's token.
class Server {
 public:
  virtual ~Server() = default;
  virtual k8s::KubeClient& admin() = 0;
  // A token of kube-system/weft-agent for `audience`, as the kubelet projects it.
  virtual std::string AgentToken(const std::string& audience) = 0;
  virtual std::string url() const = 0;
  virtual std::string ca_file() const = 0;
};

class Fake : public Server {
 public:
  static std::unique_ptr<Fake> Start() {
    auto api = FakeApiServer::Start();
    if (!api.ok()) return nullptr;
    auto f = std::make_unique<Fake>();
    f->api_ = *std::move(api);
    f->api_->AddToken("admin-token", {.username = "admin", .groups = {"system:masters"}});
    f->token_file_ = ::testing::TempDir() + "/agreement-admin-token";
    std::ofstream(f->token_file_) << "admin-token\n";
    f->admin_ = std::make_unique<k8s::KubeClient>(k8s::KubeConfig{.server = f->api_->url(), .token_file = f->token_file_});
    return f;
  }
  k8s::KubeClient& admin() override { return *admin_; }
  std::string AgentToken(const std::string& audience) override {
    const std::string token = "agent-token-" + audience;
    api_->AddToken(token, {.username = "system:serviceaccount:kube-system:weft-agent", .audiences = {audience}});
    return token;
  }
  std::string url() const override { return api_->url(); }
  std::string ca_file() const override { return ""; }

 private:
  std::unique_ptr<FakeApiServer> api_;
  std::string token_file_;
  std::unique_ptr<k8s::KubeClient> admin_;
};

class Real : public Server {
 public:
  static std::unique_ptr<Real> Start(std::string* why) {
    auto bin = RealApiServer::Find(/*build=*/false);
    if (!bin.ok()) {
      *why = bin.status().ToString();
      return nullptr;
    }
    auto api = RealApiServer::Start(*bin);
    if (!api.ok()) {
      *why = api.status().ToString();
      return nullptr;
    }
    auto r = std::make_unique<Real>();
    r->api_ = *std::move(api);
    auto sa = r->api_->admin().Create(
        "/api/v1/namespaces/kube-system/serviceaccounts",
        {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "weft-agent"}}}});
    if (!sa.ok()) {
      *why = sa.status().ToString();
      return nullptr;
    }
    return r;
  }
  k8s::KubeClient& admin() override { return api_->admin(); }
  std::string AgentToken(const std::string& audience) override {
    auto t = api_->Token("kube-system", "weft-agent", {audience});
    return t.ok() ? *t : "";
  }
  std::string url() const override { return api_->url(); }
  std::string ca_file() const override { return api_->ca_file(); }

 private:
  std::unique_ptr<RealApiServer> api_;
};

class AgreementTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "fake") {
      server_ = Fake::Start();
      ASSERT_NE(server_, nullptr);
      return;
    }
    std::string why;
    server_ = Real::Start(&why);
    if (server_ == nullptr) {
      if (std::getenv("WEFT_REQUIRE_KUBE_APISERVER")) FAIL() << why;
      GTEST_SKIP() << why;
    }
  }
  std::unique_ptr<Server> server_;
};

TEST_P(AgreementTest, CreateReplacePatchAndListSemantics) {
  k8s::KubeClient& c = server_->admin();
  const std::string coll = "/api/v1/namespaces/kube-system/configmaps";
  json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "agree"}}}, {"data", {{"a", "1"}}}};
  auto created = c.Create(coll, cm);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["kind"], "ConfigMap");
  EXPECT_FALSE((*created)["metadata"].value("resourceVersion", "").empty());
  EXPECT_TRUE(absl::IsAlreadyExists(c.Create(coll, cm).status()));
  auto got = c.Get(coll + "/agree");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["metadata"]["resourceVersion"], (*created)["metadata"]["resourceVersion"]);
  json next = *got;
  next["data"]["a"] = "2";
  auto replaced = c.Replace(coll + "/agree", next);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_NE((*replaced)["metadata"]["resourceVersion"], (*got)["metadata"]["resourceVersion"]);
  next["data"]["a"] = "3";  // still carries the old resourceVersion: a lost race
  EXPECT_TRUE(absl::IsAborted(c.Replace(coll + "/agree", next).status())) << "409 Conflict is Aborted";
  auto patched = c.MergePatch(coll + "/agree", {{"data", {{"b", "x"}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["data"]["a"], "2");
  EXPECT_EQ((*patched)["data"]["b"], "x");
  auto list = c.Get(coll);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)["kind"], "ConfigMapList");
  EXPECT_FALSE((*list)["metadata"].value("resourceVersion", "").empty());
  EXPECT_TRUE(absl::IsNotFound(c.Get(coll + "/nope").status()));
}

TEST_P(AgreementTest, LeaseCreateRaceAndStaleRenewal) {
  k8s::KubeClient& c = server_->admin();
  const std::string coll = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "agree"}}},
                {"spec", {{"holderIdentity", "a"}, {"leaseDurationSeconds", 15}}}};
  auto first = c.Create(coll, lease);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(absl::IsAlreadyExists(c.Create(coll, lease).status())) << "the second candidate loses";
  json a = *first, b = *first;
  a["spec"]["holderIdentity"] = "a";
  a["spec"]["leaseTransitions"] = 1;
  b["spec"]["holderIdentity"] = "b";
  ASSERT_TRUE(c.Replace(coll + "/agree", a).ok());
  EXPECT_TRUE(absl::IsAborted(c.Replace(coll + "/agree", b).status())) << "b read before a wrote";
}

TEST_P(AgreementTest, TokensAndTokenReviewWithAudiences) {
  k8s::KubeClient& c = server_->admin();
  const std::string token = server_->AgentToken("weft-controller");
  ASSERT_FALSE(token.empty());
  auto review = [&](const std::string& t, const std::string& audience) {
    return c.Create("/apis/authentication.k8s.io/v1/tokenreviews",
                    {{"apiVersion", "authentication.k8s.io/v1"},
                     {"kind", "TokenReview"},
                     {"spec", {{"token", t}, {"audiences", {audience}}}}});
  };
  auto ok = review(token, "weft-controller");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)["status"]["authenticated"], true) << ok->dump();
  EXPECT_EQ((*ok)["status"]["user"]["username"], "system:serviceaccount:kube-system:weft-agent");
  EXPECT_EQ((*ok)["status"]["audiences"], json::array({"weft-controller"}));
  auto wrong = review(token, "other-audience");
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE((*wrong)["status"].value("authenticated", false)) << wrong->dump();
  auto forged = review("forged-token", "weft-controller");
  ASSERT_TRUE(forged.ok());
  EXPECT_FALSE((*forged)["status"].value("authenticated", false));
  // A token the server does not know: 401, Unauthenticated.
  const std::string bad = ::testing::TempDir() + "/agreement-bad-token";
  std::ofstream(bad) << "not-a-token\n";
  k8s::KubeClient stranger({.server = server_->url(), .token_file = bad, .ca_file = server_->ca_file()});
  EXPECT_TRUE(absl::IsUnauthenticated(stranger.Get("/api/v1/nodes").status()));
}

TEST_P(AgreementTest, WatchFromAListDeliversTheNextChange) {
  k8s::KubeClient& c = server_->admin();
  const std::string coll = "/api/v1/namespaces/kube-system/configmaps";
  auto list = c.Get(coll);
  ASSERT_TRUE(list.ok());
  const std::string rv = (*list)["metadata"]["resourceVersion"];
  ASSERT_TRUE(c.Create(coll, {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "watched"}}}}).ok());
  std::string seen;
  std::stop_source stop;
  absl::Status s = c.Watch(coll, rv, 5, [&](k8s::WatchEvent e) {
    if (e.type == "ADDED" && e.object["metadata"].value("name", "") == "watched") {
      seen = e.type;
      return false;
    }
    return true;
  }, stop.get_token());
  EXPECT_EQ(seen, "ADDED") << s;
}

INSTANTIATE_TEST_SUITE_P(Servers, AgreementTest, ::testing::Values("fake", "real"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace weft::testing
