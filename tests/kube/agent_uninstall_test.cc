// The agent tells an uninstall (its DaemonSet deleted) from a restart, through the API.
#include <gtest/gtest.h>

#include <fstream>

#include "node-agent/cleanup.h"
#include "tests/kube/fake_apiserver.h"

namespace weft::agent {
namespace {

TEST(AgentUninstall, OnlyADeletedDaemonSetMeansUninstall) {
  auto api = testing::FakeApiServer::Start();
  ASSERT_TRUE(api.ok());
  k8s::KubeClient client({.server = (*api)->url()});
  const std::string path = "/apis/apps/v1/namespaces/kube-system/daemonsets/weft-agent";
  nlohmann::json ds = {{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"},
                       {"metadata", {{"name", "weft-agent"}, {"namespace", "kube-system"}}}};
  ASSERT_TRUE((*api)->Put(path, ds).ok());
  auto gone = DaemonSetGone(client, "kube-system", "weft-agent");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(*gone) << "a rolling update or a drain: keep the node as it is";
  ds["metadata"]["deletionTimestamp"] = "2026-11-27T10:00:00Z";  // foreground deletion
  ASSERT_TRUE((*api)->Put(path, ds).ok());
  EXPECT_TRUE(*DaemonSetGone(client, "kube-system", "weft-agent"));
  ASSERT_TRUE((*api)->Delete(path).ok());
  EXPECT_TRUE(*DaemonSetGone(client, "kube-system", "weft-agent"));
  // kubectl delete -f and helm uninstall remove the agent's ServiceAccount and RBAC
  // before (or while) its pods stop: the agent's check is refused, and that is an uninstall.
  (*api)->AddToken("admin-token", {.username = "admin"});  // from now on tokens are checked
  const std::string token_file = ::testing::TempDir() + "/deleted-sa-token";
  std::ofstream(token_file) << "a-token-of-a-deleted-serviceaccount\n";
  k8s::KubeClient refused({.server = (*api)->url(), .token_file = token_file});
  auto refusal = DaemonSetGone(refused, "kube-system", "weft-agent");
  ASSERT_TRUE(refusal.ok()) << refusal.status();
  EXPECT_TRUE(*refusal);
  k8s::KubeClient unreachable({.server = "http://127.0.0.1:1", .timeout = std::chrono::seconds(1)});
  EXPECT_FALSE(DaemonSetGone(unreachable, "kube-system", "weft-agent").ok()) << "unsure: remove nothing";
}

}  // namespace
}  // namespace weft::agent
