#include "controller/relay_secret.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/kube/fake_apiserver.h"

namespace weft::controller {
namespace {

TEST(RelaySecret, CreatedOnceThenReadByEveryReplica) {
  auto api = testing::FakeApiServer::Start();
  ASSERT_TRUE(api.ok());
  k8s::KubeClient client({.server = (*api)->url()});
  auto first = EnsureRelaySecret(client, "kube-system", "weft-relay");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->size(), 64u);  // 32 random bytes, hex
  auto second = EnsureRelaySecret(client, "kube-system", "weft-relay");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  auto stored = (*api)->Get("/api/v1/namespaces/kube-system/secrets/weft-relay");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ((*stored)["type"], "Opaque");
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape((*stored)["data"]["secret"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, *first);  // what the relay pods mount as a file
}

TEST(RelaySecret, AnAdminsSecretIsUsedAndABadOneExplained) {
  auto api = testing::FakeApiServer::Start();
  ASSERT_TRUE(api.ok());
  k8s::KubeClient client({.server = (*api)->url()});
  const std::string path = "/api/v1/namespaces/kube-system/secrets/mine";
  ASSERT_TRUE((*api)->Put(path, {{"data", {{"secret", absl::Base64Escape("my-own-shared-secret-123\n")}}}}).ok());
  auto s = EnsureRelaySecret(client, "kube-system", "mine");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "my-own-shared-secret-123");
  ASSERT_TRUE((*api)->Put(path, {{"data", {{"other", "eA=="}}}}).ok());
  s = EnsureRelaySecret(client, "kube-system", "mine");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status()));
  EXPECT_NE(s.status().message().find("no data.secret"), std::string::npos) << s.status();
  ASSERT_TRUE((*api)->Put(path, {{"data", {{"secret", absl::Base64Escape("short")}}}}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(EnsureRelaySecret(client, "kube-system", "mine").status()));
}

}  // namespace
}  // namespace weft::controller
