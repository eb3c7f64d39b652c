#include "lib/nat/nat_classifier.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace weft::nat {

absl::string_view MappingName(Mapping m) {
  switch (m) {
    case Mapping::kUnknown: return "unknown";
    case Mapping::kNone: return "none";
    case Mapping::kEndpointIndependent: return "endpoint-independent";
    case Mapping::kEndpointDependent: return "endpoint-dependent";
  }
  return "?";
}

absl::string_view FilteringName(Filtering f) {
  switch (f) {
    case Filtering::kUnknown: return "unknown";
    case Filtering::kEndpointIndependent: return "endpoint-independent";
    case Filtering::kAddressDependent: return "address-dependent";
    case Filtering::kAddressAndPortDependent: return "address-and-port-dependent";
  }
  return "?";
}

std::string NewFlowsHardReason(const net::Endpoint& server, const net::Endpoint& mapped, const net::Endpoint& old) {
  return absl::StrCat("hard NAT: new flows are mapped per destination (a new flow to ", server.ToString(),
                      " was mapped to ", mapped.ToString(), ", while older flows keep ", old.ToString(), ")");
}

Verdict Classify(const Observations& obs) {
  Verdict v;
  v.probed = static_cast<int>(obs.probes.size());
  std::vector<const Probe*> answers;
  std::set<net::IpAddress> old_ips;
  for (const Probe& p : obs.probes) {
    if (p.mapped && !p.fresh) old_ips.insert(p.mapped->ip);
  }
  for (const Probe& p : obs.probes) {
    // A fresh flow (fresh_flows.h) that left by another way (seen from another address:
    // a relay inside the node's own network, say) says nothing about this NAT.
    if (p.mapped && (!p.fresh || old_ips.empty() || old_ips.contains(p.mapped->ip))) answers.push_back(&p);
  }
  v.answered = static_cast<int>(answers.size());
  v.hairpin = obs.hairpin;
  if (v.probed == 0) {
    v.reason = "no STUN targets configured";
    return v;
  }
  if (answers.empty() && obs.unroutable >= v.probed) {
    v.udp_blocked = true;
    v.no_route = true;
    v.reason = absl::StrCat("no route to any of ", v.probed, " STUN targets (a node without IPv",
                            obs.probes.front().server.ip.is_v4() ? "4" : "6", "?)");
    return v;
  }
  if (answers.empty()) {
    v.udp_blocked = true;
    v.reason = absl::StrCat("UDP blocked: none of ", v.probed, " STUN targets answered");
    return v;
  }
  std::set<net::Endpoint> mapped;
  std::set<net::IpAddress> server_ips;
  for (const Probe* p : answers) {
    mapped.insert(*p->mapped);
    server_ips.insert(p->server.ip);
  }
  std::set<net::IpAddress> mapped_ips;
  for (const auto& m : mapped) mapped_ips.insert(m.ip);
  if (mapped_ips.size() == 1) v.public_ip = *mapped_ips.begin();
  v.port_preserved = std::all_of(answers.begin(), answers.end(),
                                 [&](const Probe* p) { return p->mapped->port == obs.local_port; });
  if (obs.answered_from_other_address.has_value()) {
    if (*obs.answered_from_other_address) v.filtering = Filtering::kEndpointIndependent;
    else if (obs.answered_from_other_port.value_or(false)) v.filtering = Filtering::kAddressDependent;
    else v.filtering = Filtering::kAddressAndPortDependent;
  }

  if (mapped.size() > 1) {
    v.mapping = Mapping::kEndpointDependent;
    // Only the fresh flow differs: the NAT changed, and its older flows keep their ports.
    std::set<net::Endpoint> old;
    const Probe* fresh = nullptr;
    for (const Probe* p : answers) {
      if (p->fresh) fresh = p;
      else old.insert(*p->mapped);
    }
    if (fresh != nullptr && old.size() == 1 && *old.begin() != *fresh->mapped) {
      v.reason = NewFlowsHardReason(fresh->server, *fresh->mapped, *old.begin());
      return v;
    }
    v.reason = absl::StrCat("hard NAT: the port's public endpoint differs per destination (",
                            mapped.size(), " different mappings from ", v.answered, " targets)");
    return v;
  }
  const net::Endpoint& only = *mapped.begin();
  const bool ours = only.port == obs.local_port &&
                    std::find(obs.local_ips.begin(), obs.local_ips.end(), only.ip) != obs.local_ips.end();
  if (ours) {
    v.mapping = Mapping::kNone;
    v.reflexive = only;
    v.reason = absl::StrCat("no NAT: STUN sees our own address ", only.ToString());
    return v;
  }
  if (static_cast<int>(server_ips.size()) < 2) {
    v.reason = absl::StrCat("mapping unknown: only ", server_ips.size(),
                            " target address answered (need 2 or more)");
    v.reflexive = only;
    return v;
  }
  v.reflexive = only;
  if (static_cast<int>(server_ips.size()) < kMinTargetsForIndependent) {
    v.mapping = Mapping::kUnknown;
    v.reason = absl::StrCat("probably easy NAT (", only.ToString(), " from ", server_ips.size(),
                            " target addresses), but ", kMinTargetsForIndependent,
                            " are needed to rule out per-destination randomization");
    return v;
  }
  v.mapping = Mapping::kEndpointIndependent;
  v.reason = absl::StrCat("easy NAT: ", only.ToString(), " from all ", server_ips.size(),
                          " target addresses", v.port_preserved ? ", port preserved" : "");
  return v;
}

}  // namespace weft::nat
