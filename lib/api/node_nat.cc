#include "lib/api/node_nat.h"

#include <algorithm>

namespace weft::api {
namespace {

nat::Mapping MappingOf(v1::NatMapping m) {
  switch (m) {
    case v1::NAT_MAPPING_NONE: return nat::Mapping::kNone;
    case v1::NAT_MAPPING_ENDPOINT_INDEPENDENT: return nat::Mapping::kEndpointIndependent;
    case v1::NAT_MAPPING_ENDPOINT_DEPENDENT: return nat::Mapping::kEndpointDependent;
    default: return nat::Mapping::kUnknown;
  }
}

nat::Filtering FilteringOf(v1::NatFiltering f) {
  switch (f) {
    case v1::NAT_FILTERING_ENDPOINT_INDEPENDENT: return nat::Filtering::kEndpointIndependent;
    case v1::NAT_FILTERING_ADDRESS_DEPENDENT: return nat::Filtering::kAddressDependent;
    case v1::NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT: return nat::Filtering::kAddressAndPortDependent;
    default: return nat::Filtering::kUnknown;
  }
}

}  // namespace

std::optional<net::Endpoint> EndpointOf(const v1::Endpoint& e) {
  auto ip = net::IpAddress::Parse(e.ip());
  if (!ip.ok() || e.port() == 0 || e.port() > 65535) return std::nullopt;
  return net::Endpoint{*ip, static_cast<uint16_t>(e.port())};
}

nat::NodeNat NodeNatOf(const v1::NodeInfo& node) {
  nat::NodeNat n{node.name()};
  const v1::NatReport& r = node.nat();
  n.nat.mapping = MappingOf(r.mapping());
  n.nat.filtering = FilteringOf(r.filtering());
  n.nat.udp_blocked = r.udp_blocked();
  n.nat.no_route = r.no_route();
  n.nat.port_preserved = r.port_preserved();
  n.nat.reason = r.reason();
  if (r.has_reflexive()) {
    if (auto ip = net::IpAddress::Parse(r.reflexive().ip()); ip.ok()) {
      n.nat.reflexive = net::Endpoint{*ip, static_cast<uint16_t>(r.reflexive().port())};
    }
  }
  if (auto ip = net::IpAddress::Parse(r.public_ip()); ip.ok()) n.public_ip = *ip;
  if (auto e = GlobalIpv6Of(node)) n.global_ipv6 = e->ip;
  return n;
}

std::optional<net::Endpoint> GlobalIpv6Of(const v1::NodeInfo& node) {
  // The node's own global address; else where IPv6 STUN saw it (behind NPTv6, whose
  // inside addresses are ULAs).
  for (auto type : {v1::CANDIDATE_TYPE_HOST, v1::CANDIDATE_TYPE_SERVER_REFLEXIVE}) {
    for (const auto& c : node.candidates()) {
      if (c.type() != type) continue;
      if (auto e = EndpointOf(c.endpoint()); e && e->ip.is_global_v6()) return e;
    }
  }
  return std::nullopt;
}

void AddReflexive6(v1::NodeInfo& n, const std::optional<nat::Verdict>& v6, const std::vector<net::IpAddress>& hosts) {
  if (!v6 || !v6->reflexive || !v6->reflexive->ip.is_global_v6()) return;
  if (std::find(hosts.begin(), hosts.end(), v6->reflexive->ip) != hosts.end()) return;  // a host candidate says it
  auto* c = n.add_candidates();
  c->set_type(v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip(v6->reflexive->ip.ToString());
  c->mutable_endpoint()->set_port(v6->reflexive->port);
}

v1::PairDirective DirectiveOf(const nat::PathDecision& d, const std::string& peer, bool initiate) {
  v1::PairDirective p;
  p.set_peer(peer);
  p.set_path(d.path == nat::PathKind::kDirect     ? v1::PATH_KIND_DIRECT
             : d.path == nat::PathKind::kRelayTcp ? v1::PATH_KIND_RELAY_TCP
                                                  : v1::PATH_KIND_RELAY);
  p.set_initiate(d.path == nat::PathKind::kDirect && initiate);
  p.set_both_initiate(d.path == nat::PathKind::kDirect &&
                      (d.initiator == nat::Initiator::kBoth || d.initiator == nat::Initiator::kEither));
  p.set_reason(d.reason);
  p.set_local(d.use_host_candidates);
  p.set_ipv6(d.ipv6);
  return p;
}

v1::PairDirective DecideFor(const v1::NodeInfo& self, const v1::NodeInfo& peer) {
  const nat::PathDecision d = nat::DecidePath(NodeNatOf(self), NodeNatOf(peer));
  const bool initiate = d.initiator == nat::Initiator::kA || d.initiator == nat::Initiator::kBoth ||
                        d.initiator == nat::Initiator::kEither;
  return DirectiveOf(d, peer.name(), initiate);
}

v1::NatReport NatReportOf(const nat::Verdict& v) {
  v1::NatReport r;
  switch (v.mapping) {
    case nat::Mapping::kNone: r.set_mapping(v1::NAT_MAPPING_NONE); break;
    case nat::Mapping::kEndpointIndependent: r.set_mapping(v1::NAT_MAPPING_ENDPOINT_INDEPENDENT); break;
    case nat::Mapping::kEndpointDependent: r.set_mapping(v1::NAT_MAPPING_ENDPOINT_DEPENDENT); break;
    case nat::Mapping::kUnknown: r.set_mapping(v1::NAT_MAPPING_UNSPECIFIED); break;
  }
  switch (v.filtering) {
    case nat::Filtering::kEndpointIndependent: r.set_filtering(v1::NAT_FILTERING_ENDPOINT_INDEPENDENT); break;
    case nat::Filtering::kAddressDependent: r.set_filtering(v1::NAT_FILTERING_ADDRESS_DEPENDENT); break;
    case nat::Filtering::kAddressAndPortDependent: r.set_filtering(v1::NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT); break;
    case nat::Filtering::kUnknown: r.set_filtering(v1::NAT_FILTERING_UNSPECIFIED); break;
  }
  r.set_udp_blocked(v.udp_blocked);
  r.set_no_route(v.no_route);
  r.set_port_preserved(v.port_preserved);
  if (v.reflexive) {
    r.mutable_reflexive()->set_ip(v.reflexive->ip.ToString());
    r.mutable_reflexive()->set_port(v.reflexive->port);
  }
  if (v.public_ip) r.set_public_ip(v.public_ip->ToString());
  r.set_reason(v.reason);
  return r;
}

std::string WireGuardBackendName(v1::WireGuardBackend b) {
  switch (b) {
    case v1::WIRE_GUARD_BACKEND_KERNEL: return "kernel";
    case v1::WIRE_GUARD_BACKEND_USERSPACE: return "userspace";
    default: return "unknown";
  }
}

}  // namespace weft::api
