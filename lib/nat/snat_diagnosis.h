// Why a node's WireGuard port looks "hard" (or soon will), in words an admin can act on:
// the evidence the agent and the controller gathered, weighed into one condition
// (SNATRandomized) with its sources and the fix. Pure.
#ifndef WEFT_LIB_NAT_SNAT_DIAGNOSIS_H_
#define WEFT_LIB_NAT_SNAT_DIAGNOSIS_H_

#include <optional>
#include <string>
#include <vector>

namespace weft::nat {

struct SnatEvidence {
  uint16_t port = 51820;
  bool endpoint_dependent = false;  // the prober's verdict for the port, now
  bool udp_blocked = false;
  std::vector<std::string> node_rules;  // the node's own randomizing rules (agent)
  bool mitigation_installed = false;    // Weft's port-preserving rule is ahead of them
  bool endpoint_dependent_before_mitigation = false;
  std::string provider_id;  // the Node's spec.providerID
  // The aws-node DaemonSet's settings, when it runs in the cluster (unset: no aws-node).
  // RANDOMIZESNAT unset means its default, "prng".
  std::optional<std::string> aws_randomize_snat;
  bool aws_external_snat = false;
  // Peers that see this node's WireGuard traffic from another port than STUN does, while
  // the NAT keeps ports per destination: "peer b sees 198.51.100.21:40312, STUN :51820".
  std::vector<std::string> collisions;
};

struct SnatDiagnosis {
  bool randomized = false;       // the condition's status
  std::string reason;            // CamelCase: NodeRule, AwsVpcCni, NatGateway, ...
  std::vector<std::string> sources;  // each piece of evidence, one line each
  std::string message;           // what is wrong and the fix
};

SnatDiagnosis DiagnoseSnat(const SnatEvidence& e);

}  // namespace weft::nat

#endif  // WEFT_LIB_NAT_SNAT_DIAGNOSIS_H_
