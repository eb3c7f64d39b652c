#include "lib/nat/snat_diagnosis.h"

#include <gtest/gtest.h>

namespace weft::nat {
namespace {

bool Says(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(DiagnoseSnat, NothingToSay) {
  SnatDiagnosis d = DiagnoseSnat({});
  EXPECT_FALSE(d.randomized);
  EXPECT_EQ(d.reason, "NotObserved");
  EXPECT_TRUE(d.sources.empty());
}

TEST(DiagnoseSnat, ANodeRuleAndItsFix) {
  SnatDiagnosis d = DiagnoseSnat({.endpoint_dependent = true,
                                  .node_rules = {"iptables-nft ip nat KUBE-POSTROUTING: -A ... --random-fully"}});
  EXPECT_TRUE(d.randomized);
  EXPECT_EQ(d.reason, "NodeRule");
  EXPECT_EQ(d.sources.size(), 2u);
  EXPECT_TRUE(Says(d.message, "snatMitigation=true"));
}

TEST(DiagnoseSnat, TheAwsVpcCniNamedWithItsSetting) {
  SnatDiagnosis d = DiagnoseSnat({.endpoint_dependent = true,
                                  .node_rules = {"iptables-nft ip nat AWS-SNAT-CHAIN-0: ... --random-fully"},
                                  .provider_id = "aws:///eu-west-1a/i-0abc",
                                  .aws_randomize_snat = "prng"});
  EXPECT_EQ(d.reason, "AwsVpcCni");
  EXPECT_TRUE(Says(d.message, "AWS_VPC_K8S_CNI_RANDOMIZESNAT=none"));
  EXPECT_TRUE(Says(d.message, "aws-node"));
  // The CNI's setting names the cause even when the agent could not read the rule.
  EXPECT_EQ(DiagnoseSnat({.endpoint_dependent = true, .provider_id = "aws:///x", .aws_randomize_snat = "prng"}).reason,
            "AwsVpcCni");
}

TEST(DiagnoseSnat, ANatGatewayWhenNothingOnTheNodeExplainsIt) {
  SnatDiagnosis d = DiagnoseSnat({.endpoint_dependent = true, .provider_id = "aws:///eu-west-1a/i-0abc"});
  EXPECT_EQ(d.reason, "NatGateway");
  EXPECT_TRUE(Says(d.message, "public IP"));
  EXPECT_EQ(DiagnoseSnat({.endpoint_dependent = true}).reason, "EndpointDependentNat");
  // External SNAT: the CNI does not SNAT at all, so the NAT gateway is the cause.
  EXPECT_EQ(DiagnoseSnat({.endpoint_dependent = true, .provider_id = "aws:///x",
                          .aws_randomize_snat = "prng", .aws_external_snat = true})
                .reason,
            "NatGateway");
}

TEST(DiagnoseSnat, MitigatedAndCollisions) {
  SnatDiagnosis m = DiagnoseSnat({.node_rules = {"r"}, .mitigation_installed = true,
                                  .endpoint_dependent_before_mitigation = true});
  EXPECT_FALSE(m.randomized);
  EXPECT_EQ(m.reason, "Mitigated");
  EXPECT_TRUE(Says(m.message, "hard to easy"));
  SnatDiagnosis c = DiagnoseSnat({.collisions = {"peer b sees 198.51.100.21:40312, STUN 198.51.100.21:51820"}});
  EXPECT_TRUE(c.randomized);
  EXPECT_EQ(c.reason, "ConntrackCollision");
  EXPECT_TRUE(Says(c.message, "unsolicited"));
}

}  // namespace
}  // namespace weft::nat
