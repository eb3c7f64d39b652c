#include "node-agent/peer_plan.h"

#include <cstring>

#include "lib/api/node_nat.h"

namespace weft::agent {
namespace {

constexpr int kKeepaliveSeconds = 25;

std::optional<net::Endpoint> CandidateOf(const v1::NodeInfo& n, v1::CandidateType type) {
  for (const auto& c : n.candidates()) {
    if (c.type() != type) continue;
    if (auto e = api::EndpointOf(c.endpoint())) return e;
  }
  return std::nullopt;
}

}  // namespace

std::vector<PlannedPeer> PlanPeers(const std::string& self, const std::map<std::string, v1::NodeInfo>& nodes,
                                   const std::map<std::string, v1::PairDirective>& directives,
                                   const v1::NodeInfo* self_info, const std::vector<PlannedPeer>& current,
                                   const RelayEndpointFn& relay_endpoint) {
  std::vector<PlannedPeer> out;
  for (const auto& [name, n] : nodes) {
    if (name == self || n.wireguard_public_key().size() != 32 || n.pod_cidrs().empty()) continue;
    PlannedPeer p{name};
    std::memcpy(p.config.public_key.bytes.data(), n.wireguard_public_key().data(), 32);
    p.config.replace_allowed_ips = true;
    p.config.persistent_keepalive = kKeepaliveSeconds;
    for (const auto& c : n.pod_cidrs()) {
      if (auto prefix = net::IpPrefix::ParseNetwork(c); prefix.ok()) {
        p.config.allowed_ips.push_back(*prefix);
        p.routes.push_back(*prefix);
      }
    }
    const v1::PairDirective* dir = nullptr;
    v1::PairDirective local;
    if (auto it = directives.find(name); it != directives.end()) {
      dir = &it->second;
    } else if (self_info != nullptr && self_info->nat().mapping() != v1::NAT_MAPPING_UNSPECIFIED &&
               n.nat().mapping() != v1::NAT_MAPPING_UNSPECIFIED) {
      local = api::DecideFor(*self_info, n);  // what the controller will say
      dir = &local;
    }
    const auto host = CandidateOf(n, v1::CANDIDATE_TYPE_HOST);
    const auto reflexive = CandidateOf(n, v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
    if (dir == nullptr) {
      // No decision possible yet: send nothing, so that no hole is punched in vain where
      // the strategy table will say relay.
      for (const auto& c : current) {
        if (c.config.public_key == p.config.public_key) out.push_back(c);
      }
      continue;
    } else if (dir->path() == v1::PATH_KIND_DIRECT && dir->ipv6()) {
      // Over the peer's global IPv6 address: both send first; each side's punches (from
      // the WireGuard port to the peer's) open its own stateful firewall to the other's
      // packets, so whichever handshake comes first gets through.
      p.path = "direct";
      p.reason = dir->reason();
      p.config.endpoint = api::GlobalIpv6Of(n);
      p.decision = nat::PairDecision{.direct = true, .send_to = p.config.endpoint, .reason = dir->reason()};
      p.decision->yield = p.config.endpoint.has_value() && self > name;
      if (p.config.endpoint) p.decision->punch.push_back(*p.config.endpoint);
    } else if (dir->path() == v1::PATH_KIND_DIRECT) {
      p.path = "direct";
      p.reason = dir->reason();
      if (dir->local()) {
        p.config.endpoint = host;
      } else if (dir->initiate()) {
        p.config.endpoint = reflexive ? reflexive : host;
      }
      // Where to punch before a relayed pair moves here: the address the peer's packets
      // will come from (its LAN address behind our own NAT, else its public one).
      const auto punch = dir->local() ? host : (reflexive ? reflexive : host);
      p.decision = nat::PairDecision{.direct = true, .send_to = p.config.endpoint, .reason = dir->reason()};
      // Both send first: the side named later lets the other's first handshake through.
      p.decision->yield = p.config.endpoint.has_value() && dir->both_initiate() && self > name;
      if (punch) p.decision->punch.push_back(*punch);
    } else if (auto via = relay_endpoint ? relay_endpoint(n) : std::nullopt; via.has_value()) {
      p.path = "relay";
      p.reason = dir->reason();
      p.config.endpoint = via;
    } else {
      p.path = "none";
      p.reason = dir->reason() + " (no relay available: no path)";
    }
    if (!p.decision) p.decision = nat::PairDecision{.direct = false, .reason = dir->reason()};
    out.push_back(std::move(p));
  }
  return out;
}

nat::Path EndpointPath(const std::optional<net::Endpoint>& e) {
  if (!e) return nat::Path::kNone;
  if (e->ip.is_v4() && e->ip.bytes()[0] == 127) return nat::Path::kRelay;
  return nat::Path::kDirect;
}

std::string TruePathName(nat::Path p, bool relay_tcp) {
  if (p == nat::Path::kRelay && relay_tcp) return "relay-tcp";
  return std::string(nat::PathName(p));
}

wireguard::DeviceConfig DiffPeers(const std::vector<PlannedPeer>& current, const std::vector<PlannedPeer>& desired) {
  wireguard::DeviceConfig c;
  std::map<wireguard::Key, const PlannedPeer*> cur;
  for (const auto& p : current) cur[p.config.public_key] = &p;
  for (const auto& p : desired) {
    auto it = cur.find(p.config.public_key);
    const bool same = it != cur.end() && it->second->config.allowed_ips == p.config.allowed_ips &&
                      it->second->config.endpoint == p.config.endpoint &&
                      it->second->config.persistent_keepalive == p.config.persistent_keepalive;
    if (it != cur.end()) cur.erase(it);
    if (!same) c.peers.push_back(p.config);
  }
  for (const auto& [key, p] : cur) c.peers.push_back(wireguard::PeerConfig{.public_key = key, .remove = true});
  return c;
}

}  // namespace weft::agent
