#include "lib/k8s/sa_token.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace weft::k8s {
namespace {

constexpr char kSa[] = "system:serviceaccount:kube-system:weft-agent";

std::string Jwt(const nlohmann::json& payload) {
  return absl::WebSafeBase64Escape(R"({"alg":"RS256"})") + "." + absl::WebSafeBase64Escape(payload.dump()) + ".c2ln";
}

nlohmann::json Projected() {
  return {{"aud", {"weft-controller"}},
          {"exp", 2000},
          {"iat", 1000},
          {"sub", kSa},
          {"kubernetes.io", {{"namespace", "kube-system"}, {"pod", {{"name", "weft-agent-x"}, {"uid", "u1"}}}}}};
}

TEST(SaTokenTest, AProjectedTokenPasses) {
  auto c = ReadTokenClaims(Jwt(Projected()));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->audiences, std::vector<std::string>{"weft-controller"});
  EXPECT_EQ(c->expires, 2000);
  EXPECT_EQ(c->pod_name, "weft-agent-x");
  EXPECT_EQ(c->pod_uid, "u1");
  EXPECT_TRUE(PrecheckProjectedToken(Jwt(Projected()), "weft-controller", kSa, 1500).ok());
}

TEST(SaTokenTest, WhatCouldNeverPassAReviewIsRefusedAtOnce) {
  struct Case {
    std::string token, says;
  };
  nlohmann::json other_aud = Projected(), other_sa = Projected(), expired = Projected(), unbound = Projected(),
                 aud_string = Projected();
  other_aud["aud"] = {"https://kubernetes.default.svc"};
  other_sa["sub"] = "system:serviceaccount:default:default";
  unbound.erase("kubernetes.io");
  aud_string["aud"] = 7;
  const std::vector<Case> cases = {
      {"", "not a JWT"},
      {"forged", "not a JWT"},
      {"a.b", "not a JWT"},
      {"a.!!!.c", "not base64url"},
      {"a." + absl::WebSafeBase64Escape("[1]") + ".c", "not a JSON object"},
      {Jwt(other_aud), "not for audience"},
      {Jwt(other_sa), "not \"system:serviceaccount:kube-system:weft-agent\"'s"},
      {Jwt(expired), "expired"},
      {Jwt(unbound), "not bound to a Pod"},
      {Jwt(aud_string), "neither a string nor an array"},
      {std::string(20000, 'a'), "longer than 16 KiB"},
  };
  for (const auto& k : cases) {
    absl::Status s = PrecheckProjectedToken(k.token, "weft-controller", kSa, k.token == Jwt(expired) ? 3000 : 1500);
    EXPECT_TRUE(absl::IsUnauthenticated(s)) << k.says << ": " << s;
    EXPECT_NE(s.message().find(k.says), absl::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace weft::k8s
