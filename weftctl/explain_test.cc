#include "weftctl/explain.h"

#include <gtest/gtest.h>

namespace weft::weftctl {
namespace {

const nlohmann::json kStatus = nlohmann::json::parse(R"({"version": 9, "nodes": [
  {"name": "aws1", "connected": true, "wireguard": "kernel", "nat": {"mapping": "endpoint-dependent", "filtering": "address-and-port-dependent",
   "udpBlocked": false, "reason": "hard NAT: 3 different mappings from 3 targets"},
   "snat": {"randomized": true, "reason": "NatGateway", "message": "give the node a public IP",
            "sources": ["active: STUN sees a different public port per destination for UDP 51820"]},
   "peers": [{"peer": "home1", "path": "relay", "reason": "relayed: aws1 is behind endpoint-dependent NAT"}]},
  {"name": "home1", "connected": true, "nat": {"mapping": "endpoint-independent", "filtering": "address-and-port-dependent",
   "udpBlocked": false, "reason": "easy NAT", "reflexive": "198.51.100.21:51820"},
   "snat": {"randomized": false, "reason": "NotObserved", "message": "UDP 51820 keeps its port", "sources": []},
   "peers": [{"peer": "aws1", "path": "relay", "reason": "relayed: aws1 is behind endpoint-dependent NAT"}]}]})");

TEST(Explain, WhyIsThePairRelayed) {
  auto text = Explain(kStatus, "aws1", "home1");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("node aws1: NAT hard"), std::string::npos) << *text;
  EXPECT_NE(text->find(", WireGuard kernel\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("SNAT randomization: yes (NatGateway)"), std::string::npos);
  EXPECT_NE(text->find("give the node a public IP"), std::string::npos);
  EXPECT_NE(text->find("aws1 -> home1: relay\n  why: relayed: aws1 is behind endpoint-dependent NAT"), std::string::npos);
  EXPECT_NE(text->find("node home1: NAT easy"), std::string::npos);
}

TEST(Explain, ReadsWeftNodesToo) {
  nlohmann::json wn = {{"kind", "WeftNode"},
                       {"metadata", {{"name", "k1"}}},
                       {"status",
                        {{"nat", {{"type", "easy"}, {"mapping", "endpoint-independent"}, {"filtering", "x"}}},
                         {"wireguard", "userspace"},
                         {"snat", {{"randomized", false}, {"reason", "Mitigated"}, {"message", "kept"}}},
                         {"peers", {{{"name", "home1"}, {"path", "direct"}, {"reason", "both easy"}}}}}}};
  auto text = Explain(wn, "k1", "");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("SNAT randomization: no (Mitigated)"), std::string::npos) << *text;
  EXPECT_NE(text->find(", WireGuard userspace\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("k1 -> home1: direct (both easy)"), std::string::npos);
}

// Decided direct, relayed now: the truth first, the decision beside it, and why.
TEST(Explain, TheTruthBesideTheDecision) {
  const nlohmann::json wn = nlohmann::json::parse(R"j({"kind": "WeftNode", "metadata": {"name": "e1"},
    "status": {"nat": {"type": "easy"}, "peers": [{"name": "e2", "path": "relay", "decision": "direct",
      "reason": "direct: both easy",
      "why": "the direct path stopped answering: relayed, direct retried with backoff (direct: both easy)",
      "endpoint": "127.0.0.1:40001", "lastHandshake": "2026-12-02T06:00:00Z", "pathMtu": 1328}]}})j");
  auto all = Explain(wn, "e1", "");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_NE(all->find("e1 -> e2: relay, decided direct (the direct path stopped answering"), std::string::npos) << *all;
  auto one = Explain(wn, "e1", "e2");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_NE(one->find("e1 -> e2: relay, decided direct\n  why: direct: both easy\n  now: the direct path stopped"),
            std::string::npos)
      << *one;
  EXPECT_NE(one->find("WireGuard endpoint: 127.0.0.1:40001"), std::string::npos) << *one;
  EXPECT_NE(one->find("path MTU: 1328"), std::string::npos) << *one;
}

TEST(Explain, SaysWhatIsMissing) {
  EXPECT_TRUE(absl::IsNotFound(Explain(kStatus, "nope", "").status()));
  EXPECT_TRUE(absl::IsNotFound(Explain(kStatus, "aws1", "nope").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Explain(nlohmann::json::object(), "a", "").status()));
}

}  // namespace
}  // namespace weft::weftctl
