#include "lib/nat/snat_diagnosis.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::nat {

SnatDiagnosis DiagnoseSnat(const SnatEvidence& e) {
  SnatDiagnosis d;
  const bool aws = absl::StartsWith(e.provider_id, "aws://");
  const bool aws_cni_randomizes =
      e.aws_randomize_snat && !e.aws_external_snat && *e.aws_randomize_snat != "none";
  if (e.endpoint_dependent) {
    d.sources.push_back(absl::StrCat("active: STUN sees a different public port per destination for UDP ", e.port,
                                     " (endpoint-dependent mapping)"));
  }
  for (const auto& r : e.node_rules) d.sources.push_back(absl::StrCat("node rule: ", r));
  if (aws_cni_randomizes) {
    d.sources.push_back(absl::StrCat("aws-node DaemonSet: AWS_VPC_K8S_CNI_RANDOMIZESNAT=", *e.aws_randomize_snat,
                                     " (the AWS VPC CNI SNATs with --random-fully)"));
  }
  if (aws) d.sources.push_back(absl::StrCat("Node provider ID ", e.provider_id, " (AWS)"));
  for (const auto& c : e.collisions) d.sources.push_back(absl::StrCat("conntrack collision: ", c));

  const std::string keep = absl::StrCat("UDP ", e.port);
  if (e.mitigation_installed && !e.endpoint_dependent) {
    d.randomized = false;
    d.reason = "Mitigated";
    d.message = absl::StrCat("the node's SNAT would randomize ", keep, "; Weft's port-preserving rule (nftables table ",
                             "ip weft-snat) keeps the port",
                             e.endpoint_dependent_before_mitigation ? ": the NAT verdict went from hard to easy" : "");
    return d;
  }
  if (aws_cni_randomizes && (e.endpoint_dependent || !e.node_rules.empty())) {
    d.randomized = true;
    d.reason = "AwsVpcCni";
    d.message = absl::StrCat(
        "the AWS VPC CNI randomizes the source port of ", keep,
        " (AWS_VPC_K8S_CNI_RANDOMIZESNAT=", *e.aws_randomize_snat,
        "): set AWS_VPC_K8S_CNI_RANDOMIZESNAT=none on the aws-node DaemonSet (kubectl -n kube-system set env "
        "daemonset/aws-node AWS_VPC_K8S_CNI_RANDOMIZESNAT=none), or enable Weft's SNAT mitigation (Helm value "
        "snatMitigation=true). If the node is in a private subnet, its NAT Gateway randomizes too: give the node a "
        "public IP");
    return d;
  }
  if (!e.node_rules.empty()) {
    d.randomized = true;
    d.reason = "NodeRule";
    d.message = absl::StrCat("a source-NAT rule on the node randomizes the source port of ", keep, " (",
                             e.node_rules.front(),
                             "): enable Weft's SNAT mitigation (Helm value snatMitigation=true), which puts a "
                             "port-preserving rule for that port alone ahead of it, or drop --random-fully from the rule");
    return d;
  }
  if (e.endpoint_dependent) {
    d.randomized = true;
    if (aws) {
      d.reason = "NatGateway";
      d.message = absl::StrCat(
          "the node reaches the internet through a NAT that picks a new port per destination and nothing on the node "
          "causes it: on AWS, a NAT Gateway (a private subnet). Give the node a public IP (a public subnet or an "
          "Elastic IP) to go direct; until then Weft initiates from this node towards public and address-filtering "
          "peers and relays the rest");
    } else {
      d.reason = "EndpointDependentNat";
      d.message = absl::StrCat(
          "the NAT in front of the node picks a new port per destination (endpoint-dependent mapping) and nothing on "
          "the node causes it: give the node a public IP or a port-preserving NAT to go direct; until then Weft "
          "initiates from this node towards public and address-filtering peers and relays the rest");
    }
    return d;
  }
  if (!e.collisions.empty()) {
    d.randomized = true;
    d.reason = "ConntrackCollision";
    d.message = absl::StrCat(
        "the NAT in front of the node keeps ports, but not for ", e.collisions.size() == 1 ? "one peer" : "some peers",
        " (", e.collisions.front(),
        "): an unsolicited packet reached the NAT before the node's own, and its conntrack entry took the port. Drop "
        "unsolicited UDP to ", keep, " on that NAT (a firewall rule for the port, see seeds/004) so it never happens");
    return d;
  }
  if (aws_cni_randomizes) {
    // The CNI is set to randomize, but nothing here shows it touches this port.
    d.reason = "NotObserved";
    d.message = absl::StrCat("aws-node is set to randomize SNAT, but ", keep,
                             " keeps its port (the node's traffic is not SNATed by it)");
    return d;
  }
  d.reason = "NotObserved";
  d.message = absl::StrCat(keep, " keeps its port: no randomizing SNAT seen");
  return d;
}

}  // namespace weft::nat
