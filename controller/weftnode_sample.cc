// Prints a WeftNode object with every status field the controller writes filled in, for
// tests/deploy/chart_test.py to check against the CRD's schema (nothing the controller
// writes may be pruned or refused).
#include <cstdio>

#include "controller/weftnode.h"

int main() {
  using namespace weft;
  controller::NodeView v;
  v.info.set_name("node-a");
  v.info.set_wireguard_public_key(std::string(32, '\1'));
  v.info.add_pod_cidrs("10.244.1.0/24");
  auto* c = v.info.add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip("203.0.113.7");
  c->mutable_endpoint()->set_port(51820);
  auto* nat = v.info.mutable_nat();
  nat->set_mapping(v1::NAT_MAPPING_ENDPOINT_INDEPENDENT);
  nat->set_filtering(v1::NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT);
  nat->set_port_preserved(true);
  nat->set_public_ip("203.0.113.7");
  nat->mutable_reflexive()->set_ip("203.0.113.7");
  nat->mutable_reflexive()->set_port(51820);
  nat->set_reason("easy NAT: 203.0.113.7:51820 from all 3 target addresses");
  auto* nat6 = v.info.mutable_nat6();  // behind NPTv6
  nat6->set_mapping(v1::NAT_MAPPING_UNSPECIFIED);
  nat6->mutable_reflexive()->set_ip("2001:db8:7::2");
  nat6->mutable_reflexive()->set_port(51820);
  nat6->set_reason("mapping unknown: only 1 target address answered (need 2 or more)");
  v.connected = true;
  v.provider_id = "aws:///us-east-1a/i-0123456789abcdef0";
  v1::PeerHealth h;
  h.set_peer("node-b");
  h.mutable_endpoint()->set_ip("198.51.100.9");
  h.mutable_endpoint()->set_port(51820);
  h.set_last_handshake_unix_ms(1800000000000);
  h.set_rtt_us(900);
  h.set_path(v1::PATH_KIND_DIRECT);
  h.set_reason("direct over the local network");
  nat::PathDecision d;
  d.path = nat::PathKind::kDirect;
  d.use_host_candidates = true;
  d.reason = "direct over the local network";
  v.peers.push_back({"node-b", d, h});
  // Decided direct, on the relay for now: the truth beside the decision, and why.
  v1::PeerHealth fell;
  fell.set_peer("node-d");
  fell.set_path(v1::PATH_KIND_RELAY);
  fell.mutable_endpoint()->set_ip("127.0.0.1");
  fell.mutable_endpoint()->set_port(40001);
  fell.set_last_handshake_unix_ms(1800000000000);
  fell.set_reason("the direct path stopped answering: relayed, direct retried with backoff (direct: both easy)");
  nat::PathDecision dd;
  dd.path = nat::PathKind::kDirect;
  dd.reason = "direct: both easy";
  v.peers.push_back({"node-d", dd, fell});
  v.peers.push_back({"node-c", nat::PathDecision{}, std::nullopt});
  v.info.mutable_snat()->add_randomizing_rules("iptables-nft ip nat KUBE-POSTROUTING: -A KUBE-POSTROUTING -j MASQUERADE --random-fully");
  v.info.mutable_snat()->set_mitigation_installed(true);
  v.info.mutable_snat()->mutable_before_mitigation()->set_mapping(v1::NAT_MAPPING_ENDPOINT_DEPENDENT);
  v.snat = nat::DiagnoseSnat({.node_rules = {v.info.snat().randomizing_rules(0)}, .mitigation_installed = true,
                              .endpoint_dependent_before_mitigation = true, .provider_id = v.provider_id});
  nlohmann::json obj = controller::NewWeftNode("node-a");
  obj["status"] = controller::WeftNodeStatus(v);
  controller::SetTransitionTimes(nlohmann::json(), "2026-11-27T10:00:00Z", obj["status"]);  // as the writer does
  std::printf("%s\n", obj.dump(2).c_str());
  return 0;
}
