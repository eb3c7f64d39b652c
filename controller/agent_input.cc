#include "controller/agent_input.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/net/ip_address.h"
#include "lib/status/status_macros.h"

namespace weft::controller {
namespace {

bool LabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

absl::Status TextField(const std::string& s, absl::string_view field) {
  if (s.size() > kMaxText) return absl::InvalidArgumentError(absl::StrCat(field, " is longer than ", kMaxText, " bytes"));
  return absl::OkStatus();
}

absl::Status CheckNatReport(const v1::NatReport& r, absl::string_view field) {
  if (!v1::NatMapping_IsValid(r.mapping())) return absl::InvalidArgumentError(absl::StrCat(field, ".mapping is unknown"));
  if (!v1::NatFiltering_IsValid(r.filtering())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".filtering is unknown"));
  }
  if (r.has_reflexive()) {
    if (absl::Status s = CheckEndpoint(r.reflexive()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".reflexive: ", s.message()));
    }
  }
  if (!r.public_ip().empty() && !net::IpAddress::Parse(r.public_ip()).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".public_ip is not an address"));
  }
  return TextField(r.reason(), absl::StrCat(field, ".reason"));
}

}  // namespace

absl::Status CheckNodeName(absl::string_view name) {
  if (name.empty() || name.size() > 253) {
    return absl::InvalidArgumentError("a node name has 1 to 253 characters");
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-';
    for (char c : label) ok = ok && LabelChar(c);
    if (!ok) {
      return absl::InvalidArgumentError(
          "a node name is an RFC 1123 subdomain: lower-case letters, digits, '-' and '.', labels of 1-63 characters");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckEndpoint(const v1::Endpoint& e) {
  auto ip = net::IpAddress::Parse(e.ip());
  if (!ip.ok()) return absl::InvalidArgumentError("not an IP address");
  if (e.port() == 0 || e.port() > 65535) return absl::InvalidArgumentError("port not in 1-65535");
  if (absl::string_view kind = net::NonUnicastKind(*ip); !kind.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(e.ip(), " is not a unicast address a peer can reach (", kind, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckHello(const v1::Hello& h) {
  if (absl::Status s = CheckNodeName(h.node()); !s.ok()) return absl::InvalidArgumentError(absl::StrCat("Hello.node: ", s.message()));
  if (h.token().size() > kMaxToken) return absl::InvalidArgumentError("Hello.token is too long");
  if (h.resume_epoch().size() > 64) return absl::InvalidArgumentError("Hello.resume_epoch is too long");
  if (static_cast<size_t>(h.pod_cidrs_size()) > kMaxPodCidrs) {
    return absl::InvalidArgumentError(absl::StrCat("Hello.pod_cidrs has more than ", kMaxPodCidrs, " entries"));
  }
  for (const auto& c : h.pod_cidrs()) {
    if (!net::IpPrefix::ParseNetwork(c).ok()) return absl::InvalidArgumentError("Hello.pod_cidrs holds a non-CIDR");
  }
  return absl::OkStatus();
}

absl::Status CheckNodeInfo(const v1::NodeInfo& n) {
  if (absl::Status s = CheckNodeName(n.name()); !s.ok()) return absl::InvalidArgumentError(absl::StrCat("name: ", s.message()));
  if (!n.wireguard_public_key().empty() && n.wireguard_public_key().size() != 32) {
    return absl::InvalidArgumentError("wireguard_public_key must be 32 bytes");
  }
  if (n.wireguard_public_key() == std::string(32, '\0')) {
    return absl::InvalidArgumentError("wireguard_public_key is all zeros");
  }
  if (static_cast<size_t>(n.pod_cidrs_size()) > kMaxPodCidrs) {
    return absl::InvalidArgumentError(absl::StrCat("pod_cidrs has more than ", kMaxPodCidrs, " entries"));
  }
  if (static_cast<size_t>(n.candidates_size()) > kMaxCandidates) {
    return absl::InvalidArgumentError(
        absl::StrCat(n.candidates_size(), " candidates: at most ", kMaxCandidates, " are accepted"));
  }
  for (int i = 0; i < n.candidates_size(); ++i) {
    const v1::Candidate& c = n.candidates(i);
    if (c.type() == v1::CANDIDATE_TYPE_UNSPECIFIED || !v1::CandidateType_IsValid(c.type())) {
      return absl::InvalidArgumentError(absl::StrCat("candidates[", i, "].type is not set or unknown"));
    }
    if (absl::Status s = CheckEndpoint(c.endpoint()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("candidates[", i, "]: ", s.message()));
    }
  }
  RETURN_IF_ERROR(CheckNatReport(n.nat(), "nat"));
  if (static_cast<size_t>(n.snat().randomizing_rules_size()) > kMaxSnatRules) {
    return absl::InvalidArgumentError(absl::StrCat("snat.randomizing_rules has more than ", kMaxSnatRules, " entries"));
  }
  for (const auto& r : n.snat().randomizing_rules()) RETURN_IF_ERROR(TextField(r, "snat.randomizing_rules[]"));
  if (n.snat().has_before_mitigation()) RETURN_IF_ERROR(CheckNatReport(n.snat().before_mitigation(), "snat.before_mitigation"));
  return absl::OkStatus();
}

v1::HealthReport CleanHealth(const v1::HealthReport& report, const std::function<bool(const std::string&)>& is_peer,
                             size_t* dropped) {
  v1::HealthReport out;
  std::set<std::string> seen;
  for (const auto& h : report.peers()) {
    // WireGuard's endpoint as the node sees it: any address (a relayed peer's is the
    // node's own loopback proxy), or none.
    const bool endpoint_ok = (h.endpoint().ip().empty() && h.endpoint().port() == 0) ||
                             (net::IpAddress::Parse(h.endpoint().ip()).ok() && h.endpoint().port() <= 65535);
    if (!is_peer(h.peer()) || !seen.insert(h.peer()).second || !endpoint_ok || !v1::PathKind_IsValid(h.path()) ||
        h.reason().size() > kMaxText) {
      ++*dropped;
      continue;
    }
    *out.add_peers() = h;
  }
  return out;
}

}  // namespace weft::controller
