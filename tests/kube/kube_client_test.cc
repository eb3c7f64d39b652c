// lib/k8s (client, reflector, leader election) against the fake API server, and the
// fake's own faithfulness to kube-apiserver's wire behaviour.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "lib/k8s/kube_client.h"
#include "lib/k8s/lease.h"
#include "lib/k8s/reflector.h"
#include "tests/kube/fake_apiserver.h"

namespace weft::k8s {
namespace {

using nlohmann::json;
using testing::FakeApiServer;

json Node(const std::string& name, const std::string& cidr) {
  return {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}},
          {"spec", {{"podCIDR", cidr}, {"podCIDRs", {cidr}}}}};
}

// Polls `f` every 10 ms for at most `ms`.
template <typename F>
bool Eventually(F f, int ms = 5000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

class KubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeApiServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    api_ = *std::move(s);
    client_ = std::make_unique<KubeClient>(KubeConfig{.server = api_->url()});
  }
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<KubeClient> client_;
};

TEST_F(KubeTest, CreateGetReplaceWithOptimisticConcurrency) {
  auto created = client_->Create("/api/v1/nodes", Node("n1", "10.244.1.0/24"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(ResourceVersionOf(*created).empty());
  EXPECT_TRUE((*created)["metadata"].contains("uid"));
  EXPECT_TRUE(absl::IsAlreadyExists(client_->Create("/api/v1/nodes", Node("n1", "x")).status()));
  EXPECT_TRUE(absl::IsNotFound(client_->Get("/api/v1/nodes/n2").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Create("/api/v1/nodes", Node("Bad_Name", "x")).status()));

  json stale = *created;
  json fresh = *created;
  fresh["metadata"]["labels"]["a"] = "b";
  ASSERT_TRUE(client_->Replace("/api/v1/nodes/n1", fresh).ok());
  stale["metadata"]["labels"]["a"] = "c";
  absl::Status conflict = client_->Replace("/api/v1/nodes/n1", stale).status();
  EXPECT_TRUE(absl::IsAborted(conflict)) << conflict;
  EXPECT_NE(conflict.message().find("the object has been modified"), absl::string_view::npos);
}

TEST_F(KubeTest, StatusSubresourceOwnsStatusAndNoOpWritesKeepTheVersion) {
  json wn = {{"apiVersion", "weft.dev/v1alpha1"}, {"kind", "WeftNode"}, {"metadata", {{"name", "n1"}}},
             {"status", {{"nat", "ignored on create"}}}};
  auto created = client_->Create("/apis/weft.dev/v1alpha1/weftnodes", wn);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->contains("status"));
  auto patched = client_->MergePatch("/apis/weft.dev/v1alpha1/weftnodes/n1/status",
                                     {{"status", {{"nat", "easy"}}}, {"metadata", {{"labels", {{"x", "y"}}}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["status"]["nat"], "easy");
  EXPECT_FALSE((*patched)["metadata"].contains("labels"));  // /status changes only status
  auto main = client_->MergePatch("/apis/weft.dev/v1alpha1/weftnodes/n1", {{"status", {{"nat", "hard"}}}});
  ASSERT_TRUE(main.ok());
  EXPECT_EQ((*main)["status"]["nat"], "easy");  // the object ignores status
  auto again = client_->MergePatch("/apis/weft.dev/v1alpha1/weftnodes/n1/status", {{"status", {{"nat", "easy"}}}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ResourceVersionOf(*again), ResourceVersionOf(*patched));
}

TEST_F(KubeTest, RefusesUnknownTokensAndReviewsTokensWithAudiences) {
  api_->AddToken("controller-token", {.username = "system:serviceaccount:kube-system:weft-controller"});
  api_->AddToken("agent-token", {.username = "system:serviceaccount:kube-system:weft-agent",
                                 .audiences = {"weft-controller"},
                                 .extra = {{"authentication.kubernetes.io/node-name", {"n1"}}}});
  EXPECT_TRUE(absl::IsUnauthenticated(client_->Get("/api/v1/nodes").status()));
  char path[] = "/tmp/weft-kube-token-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "controller-token\n", 17), 17);
  close(fd);
  KubeClient authed({.server = api_->url(), .token_file = path});
  EXPECT_TRUE(authed.Get("/api/v1/nodes").ok());
  auto review = [&](const std::string& token, const std::string& audience) {
    return authed.Create("/apis/authentication.k8s.io/v1/tokenreviews",
                         {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"},
                          {"spec", {{"token", token}, {"audiences", {audience}}}}});
  };
  auto ok = review("agent-token", "weft-controller");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)["status"]["authenticated"], true);
  EXPECT_EQ((*ok)["status"]["user"]["extra"]["authentication.kubernetes.io/node-name"][0], "n1");
  EXPECT_FALSE(review("agent-token", "other-audience")->at("status").value("authenticated", false));
  EXPECT_FALSE(review("forged", "weft-controller")->at("status").value("authenticated", false));
  unlink(path);
}

TEST_F(KubeTest, WatchDeliversEventsBookmarksAndGoneAfterCompaction) {
  ASSERT_TRUE(client_->Create("/api/v1/nodes", Node("n1", "10.244.1.0/24")).ok());
  auto list = client_->Get("/api/v1/nodes");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)["kind"], "NodeList");
  const std::string rv = ResourceVersionOf(*list);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)client_->Create("/api/v1/nodes", Node("n2", "10.244.2.0/24"));
    (void)api_->Delete("/api/v1/nodes/n1");
  });
  std::vector<std::string> seen;
  absl::Status s = client_->Watch(
      "/api/v1/nodes", rv, 3,
      [&](WatchEvent e) {
        seen.push_back(e.type + " " + e.object["metadata"].value("name", ""));
        return !(e.type == "BOOKMARK" && seen.size() >= 3);
      },
      {});
  writer.join();
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0], "ADDED n2");
  EXPECT_EQ(seen[1], "DELETED n1");
  EXPECT_EQ(seen[2], "BOOKMARK ");

  api_->Compact();
  std::vector<WatchEvent> events;
  s = client_->Watch("/api/v1/nodes", rv, 3, [&](WatchEvent e) { events.push_back(e); return true; }, {});
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "ERROR");
  EXPECT_TRUE(absl::IsOutOfRange(WatchErrorStatus(events[0])));
}

TEST_F(KubeTest, LabelSelectorsFilterListsAndWatchesLikeKubeApiserver) {
  auto slice = [](const std::string& name, const std::string& service) {
    return json{{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
                {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/service-name", service}}}}},
                {"addressType", "IPv4"}, {"endpoints", json::array()}};
  };
  const std::string path = "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices";
  const std::string selected = path + "?labelSelector=kubernetes.io%2Fservice-name%3Dweft-relay";
  ASSERT_TRUE(client_->Create(path, slice("relay-a", "weft-relay")).ok());
  ASSERT_TRUE(client_->Create(path, slice("dns-a", "kube-dns")).ok());
  auto list = client_->Get(selected);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)["kind"], "EndpointSliceList");
  ASSERT_EQ((*list)["items"].size(), 1u);
  EXPECT_EQ((*list)["items"][0]["metadata"]["name"], "relay-a");
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)client_->MergePatch(path + "/dns-a", {{"metadata", {{"labels", {{"kubernetes.io/service-name", "weft-relay"}}}}}});
    (void)client_->MergePatch(path + "/relay-a", {{"metadata", {{"labels", {{"kubernetes.io/service-name", "other"}}}}}});
    (void)client_->Create(path, slice("dns-b", "kube-dns"));
    (void)client_->MergePatch(path + "/dns-a", {{"endpoints", {{{"addresses", {"10.0.0.1"}}}}}});
  });
  std::vector<std::string> seen;
  absl::Status s = client_->Watch(
      selected, ResourceVersionOf(*list), 3,
      [&](WatchEvent e) {
        if (e.type != "BOOKMARK") seen.push_back(e.type + " " + e.object["metadata"].value("name", ""));
        return seen.size() < 3;
      },
      {});
  writer.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED dns-a", "DELETED relay-a", "MODIFIED dns-a"}));
  EXPECT_FALSE(client_->Get(path + "?labelSelector=a+in+(b)").ok());
}

TEST_F(KubeTest, ReflectorRelistsAfterGoneAndMissesNothing) {
  ASSERT_TRUE(client_->Create("/api/v1/nodes", Node("n1", "10.244.1.0/24")).ok());
  std::mutex mu;
  std::set<std::string> nodes;
  Reflector r(*client_, "/api/v1/nodes",
              {.replace =
                   [&](std::vector<json> items) {
                     std::lock_guard<std::mutex> l(mu);
                     nodes.clear();
                     for (const auto& i : items) nodes.insert(i["metadata"]["name"].get<std::string>());
                   },
               .event =
                   [&](const std::string& type, const json& o) {
                     std::lock_guard<std::mutex> l(mu);
                     if (type == "DELETED") nodes.erase(o["metadata"]["name"].get<std::string>());
                     else nodes.insert(o["metadata"]["name"].get<std::string>());
                   },
               .error = [](const absl::Status& s) { ADD_FAILURE() << "reflector: " << s; }},
              /*watch_timeout_seconds=*/1);
  std::jthread run([&](std::stop_token st) { r.Run(st); });
  auto has = [&](std::set<std::string> want) {
    return Eventually([&] {
      std::lock_guard<std::mutex> l(mu);
      return nodes == want;
    });
  };
  ASSERT_TRUE(has({"n1"}));
  ASSERT_TRUE(client_->Create("/api/v1/nodes", Node("n2", "10.244.2.0/24")).ok());
  ASSERT_TRUE(has({"n1", "n2"}));
  // The stream ends every second (timeoutSeconds); resuming must not relist.
  ASSERT_TRUE(Eventually([&] { return api_->watches_started() >= 3; }));
  EXPECT_EQ(r.lists(), 1);
  // A watch that cannot resume (the history was compacted) relists, and the relist's
  // full set replaces what the handler had.
  ASSERT_TRUE(api_->Delete("/api/v1/nodes/n1").ok());
  api_->Compact();
  ASSERT_TRUE(Eventually([&] { return r.lists() >= 2; }));
  EXPECT_TRUE(has({"n2"}));
}

TEST_F(KubeTest, OneLeaderAndAReleasedLeaseIsTakenAtOnce) {
  ElectorOptions o{.identity = "a", .lease_duration = std::chrono::milliseconds(2000),
                   .renew_deadline = std::chrono::milliseconds(1500), .retry_period = std::chrono::milliseconds(200)};
  std::atomic<int> a_changes{0}, b_changes{0};
  LeaderElector a(*client_, o, [&](bool) { ++a_changes; });
  o.identity = "b";
  LeaderElector b(*client_, o, [&](bool) { ++b_changes; });
  auto ta = std::make_unique<std::jthread>([&](std::stop_token st) { a.Run(st); });
  ASSERT_TRUE(Eventually([&] { return a.leading(); }));
  std::jthread tb([&](std::stop_token st) { b.Run(st); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // longer than the lease
  EXPECT_TRUE(a.leading());
  EXPECT_FALSE(b.leading());
  EXPECT_EQ(b.holder(), "a");
  const auto stopped = std::chrono::steady_clock::now();
  ta.reset();  // stops a: releases the Lease
  ASSERT_TRUE(Eventually([&] { return b.leading(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, std::chrono::milliseconds(1000));
  EXPECT_EQ(a_changes.load(), 2);
  EXPECT_EQ(b_changes.load(), 1);
}

TEST_F(KubeTest, AStandbyTakesADeadLeadersLeaseWithinTheLeaseDuration) {
  // The holder died right after renewing: nobody will renew or release.
  LeaseSpec dead = Claim({}, "dead", absl::Now(), 2);
  ASSERT_TRUE(api_->Put("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller",
                        {{"apiVersion", "coordination.k8s.io/v1"}, {"kind", "Lease"},
                         {"metadata", {{"name", "weft-controller"}, {"namespace", "kube-system"}}},
                         {"spec", LeaseSpecJson(dead)}})
                  .ok());
  const auto died = std::chrono::steady_clock::now();
  LeaderElector b(*client_, {.identity = "b", .lease_duration = std::chrono::milliseconds(2000),
                             .renew_deadline = std::chrono::milliseconds(1500),
                             .retry_period = std::chrono::milliseconds(500)},
                  [](bool) {});
  std::jthread tb([&](std::stop_token st) { b.Run(st); });
  ASSERT_TRUE(Eventually([&] { return b.leading(); }));
  const auto took = std::chrono::steady_clock::now() - died;
  EXPECT_GT(took, std::chrono::milliseconds(1500));
  EXPECT_LT(took, std::chrono::milliseconds(2000 + 100));
  auto lease = api_->Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/weft-controller");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
}

}  // namespace
}  // namespace weft::k8s
