#include "controller/weftnode.h"

#include "gtest/gtest.h"
#include "lib/api/node_nat.h"

namespace weft::controller {
namespace {

using nlohmann::json;

json Conditions(const std::string& status) {
  return {{"conditions", {{{"type", "SNATRandomized"}, {"status", status}, {"reason", "NodeRule"}}}}};
}

TEST(SetTransitionTimesTest, KeptWhileTheStatusHoldsNewWhenItFlips) {
  json first = Conditions("False");
  SetTransitionTimes(json(), "2026-11-27T10:00:00Z", first);
  EXPECT_EQ(first["conditions"][0]["lastTransitionTime"], "2026-11-27T10:00:00Z");  // new

  json same = Conditions("False");
  same["conditions"][0]["reason"] = "NotObserved";  // another reason, same status
  SetTransitionTimes(first["conditions"], "2026-11-27T11:00:00Z", same);
  EXPECT_EQ(same["conditions"][0]["lastTransitionTime"], "2026-11-27T10:00:00Z");

  json flipped = Conditions("True");
  SetTransitionTimes(same["conditions"], "2026-11-27T12:00:00Z", flipped);
  EXPECT_EQ(flipped["conditions"][0]["lastTransitionTime"], "2026-11-27T12:00:00Z");

  json no_conditions = {{"ready", true}};
  SetTransitionTimes(flipped["conditions"], "x", no_conditions);
  EXPECT_FALSE(no_conditions.contains("conditions"));
  json garbage_previous = Conditions("True");
  SetTransitionTimes(json::parse(R"([7, {"type": 1}, {"type": "SNATRandomized", "status": "True", "lastTransitionTime": 5}])"),
                     "2026-11-27T13:00:00Z", garbage_previous);
  EXPECT_EQ(garbage_previous["conditions"][0]["lastTransitionTime"], "2026-11-27T13:00:00Z");
}

// The WireGuard the node runs is on its status (kubectl get weftnodes -o yaml; weftctl
// explain): from the agent's report; "unknown" from an agent that does not say.
TEST(WeftNodeStatusTest, SaysWhichWireGuardTheNodeRuns) {
  NodeView v;
  v.info.set_name("k1");
  v.info.set_wireguard_backend(v1::WIRE_GUARD_BACKEND_KERNEL);
  EXPECT_EQ(WeftNodeStatus(v)["wireguard"], "kernel");
  v.info.set_wireguard_backend(v1::WIRE_GUARD_BACKEND_USERSPACE);
  EXPECT_EQ(WeftNodeStatus(v)["wireguard"], "userspace");
  v.info.clear_wireguard_backend();
  EXPECT_EQ(WeftNodeStatus(v)["wireguard"], "unknown");
}

// Both families: the IPv4 endpoint STUN found, and the port at the node's global IPv6
// address (a ULA or an IPv4 host candidate is not it).
TEST(WeftNodeStatusTest, ShowsTheGlobalIpv6EndpointBesideTheIpv4One) {
  NodeView v;
  v.info.set_name("e1");
  v.info.mutable_nat()->mutable_reflexive()->set_ip("198.51.100.20");
  v.info.mutable_nat()->mutable_reflexive()->set_port(40123);
  EXPECT_FALSE(WeftNodeStatus(v).contains("endpointIPv6"));
  for (const char* ip : {"10.2.0.2", "fd00::2", "2001:db8:2::2"}) {
    auto* c = v.info.add_candidates();
    c->set_type(v1::CANDIDATE_TYPE_HOST);
    c->mutable_endpoint()->set_ip(ip);
    c->mutable_endpoint()->set_port(51820);
  }
  const nlohmann::json st = WeftNodeStatus(v);
  EXPECT_EQ(st["endpoint"], "198.51.100.20:40123");
  EXPECT_EQ(st["endpointIPv6"], "[2001:db8:2::2]:51820");
}

// Behind NPTv6 the node has ULAs only: IPv6's verdict carries the translated address,
// which the agent also publishes as a server-reflexive candidate; that is its IPv6
// endpoint. A reflexive address equal to a host one adds nothing.
TEST(WeftNodeStatusTest, ShowsTheIpv6VerdictAndNptv6sAddress) {
  NodeView v;
  v.info.set_name("n1");
  nat::Verdict v6;
  v6.reflexive = *net::Endpoint::Parse("[2001:db8:1::2]:51820");
  v6.reason = "mapping unknown: only 1 target address answered (need 2 or more)";
  api::AddReflexive6(v.info, v6, {*net::IpAddress::Parse("fd00:1::2")});
  *v.info.mutable_nat6() = api::NatReportOf(v6);
  nlohmann::json st = WeftNodeStatus(v);
  EXPECT_EQ(st["endpointIPv6"], "[2001:db8:1::2]:51820");
  EXPECT_EQ(st["natIPv6"]["type"], "translated");
  EXPECT_EQ(st["natIPv6"]["reflexive"], "[2001:db8:1::2]:51820");
  NodeView own;
  api::AddReflexive6(own.info, v6, {*net::IpAddress::Parse("2001:db8:1::2")});
  EXPECT_EQ(own.info.candidates_size(), 0) << "the host candidate says it";
  v6.mapping = nat::Mapping::kNone;
  *own.info.mutable_nat6() = api::NatReportOf(v6);
  EXPECT_EQ(WeftNodeStatus(own)["natIPv6"]["type"], "public");
}

// An IPv6-only node: its IPv4 "NAT type" is that it has none, not a firewall.
TEST(WeftNodeStatusTest, ANodeWithoutIpv4IsNotCalledUdpBlocked) {
  NodeView v;
  v.info.set_name("d1");
  v.info.mutable_nat()->set_udp_blocked(true);
  EXPECT_EQ(WeftNodeStatus(v)["nat"]["type"], "udp-blocked");
  v.info.mutable_nat()->set_no_route(true);
  EXPECT_EQ(WeftNodeStatus(v)["nat"]["type"], "no-ipv4");
}

}  // namespace
}  // namespace weft::controller
