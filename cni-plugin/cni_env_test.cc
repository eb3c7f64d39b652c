#include "cni-plugin/cni_env.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lib/config/cni_error.h"
#include "lib/testing/status_matchers.h"

namespace weft::cni {
namespace {

absl::StatusOr<CniEnv> Parse(const std::map<std::string, std::string>& vars) {
  return ParseCniEnv([&](const char* k) -> const char* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(CniEnvTest, AcceptsContainerdArgsAndRecordsThePod) {
  auto env = Parse({{"CNI_COMMAND", "ADD"},
                    {"CNI_CONTAINERID", "3f6940ab5ab43bc522569d15b23f8c1b"},
                    {"CNI_NETNS", "/var/run/netns/cni-1234"},
                    {"CNI_IFNAME", "eth0"},
                    {"CNI_PATH", "/opt/cni/bin"},
                    {"CNI_ARGS",
                     "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-abcde;"
                     "K8S_POD_INFRA_CONTAINER_ID=3f6940ab5ab43bc522569d15b23f8c1b;"
                     "K8S_POD_UID=0d6a3b2c-1111-2222-3333-444455556666"}});
  WEFT_ASSERT_OK(env);
  EXPECT_EQ(env->command, Command::kAdd);
  EXPECT_EQ(env->pod_namespace(), "kube-system");
  EXPECT_EQ(env->pod_name(), "coredns-5d78c9869d-abcde");
  EXPECT_EQ(env->args.at("K8S_POD_UID"), "0d6a3b2c-1111-2222-3333-444455556666");
}

TEST(CniEnvTest, DelWithEmptyNetnsIsAccepted) {
  auto env = Parse({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "abc"}, {"CNI_NETNS", ""}, {"CNI_IFNAME", "eth0"}});
  WEFT_ASSERT_OK(env);
  EXPECT_TRUE(env->netns.empty());
}

TEST(CniEnvTest, UnknownArgsNeedIgnoreUnknown) {
  std::map<std::string, std::string> base = {
      {"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "abc"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}};
  base["CNI_ARGS"] = "FOO=bar";
  EXPECT_EQ(CniCodeOf(Parse(base).status()), kInvalidEnvironment);
  base["CNI_ARGS"] = "IgnoreUnknown=true;FOO=bar";
  WEFT_EXPECT_OK(Parse(base));
  base["CNI_ARGS"] = "novalue";
  EXPECT_EQ(CniCodeOf(Parse(base).status()), kInvalidEnvironment);
}

TEST(CniEnvTest, MissingOrInvalidVariablesAreCode4) {
  struct Case {
    const char* name;
    std::map<std::string, std::string> vars;
  } cases[] = {
      {"no_command", {}},
      {"bad_command", {{"CNI_COMMAND", "FROB"}}},
      {"no_container", {{"CNI_COMMAND", "ADD"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}}},
      {"bad_container", {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "-x"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}}},
      {"no_netns_add", {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "a"}, {"CNI_IFNAME", "eth0"}}},
      {"long_ifname", {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "a"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0123456789abc"}}},
      {"slash_ifname", {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "a"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "a/b"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto env = Parse(c.vars);
    ASSERT_FALSE(env.ok());
    EXPECT_EQ(CniCodeOf(env.status()), kInvalidEnvironment);
  }
}

TEST(CniEnvTest, GcStatusVersionNeedNoAttachment) {
  for (const char* cmd : {"GC", "STATUS", "VERSION"}) {
    SCOPED_TRACE(cmd);
    WEFT_EXPECT_OK(Parse({{"CNI_COMMAND", cmd}}));
  }
}

}  // namespace
}  // namespace weft::cni
