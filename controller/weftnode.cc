#include "controller/weftnode.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/api/node_nat.h"

namespace weft::controller {
namespace {

std::string EndpointText(const v1::Endpoint& e) {
  if (e.ip().empty()) return "";
  return e.ip().find(':') != std::string::npos ? absl::StrCat("[", e.ip(), "]:", e.port())
                                                : absl::StrCat(e.ip(), ":", e.port());
}

std::string TruePath(v1::PathKind k) {
  switch (k) {
    case v1::PATH_KIND_DIRECT: return "direct";
    case v1::PATH_KIND_RELAY: return "relay";
    case v1::PATH_KIND_RELAY_TCP: return "relay-tcp";
    default: return "none";
  }
}

}  // namespace

nlohmann::json PeerJson(const PeerView& p, const char* name_key) {
  const std::string decision(nat::PathKindName(p.decision.path));
  nlohmann::json pj = {{name_key, p.name}, {"decision", decision}, {"reason", p.decision.reason}};
  if (p.decision.use_host_candidates) pj["local"] = true;
  if (!p.health) {
    pj["path"] = "unknown";  // the agent has not reported the pair yet
    return pj;
  }
  // The truth: where WireGuard sends now. Beside the decision, and why they differ.
  const std::string path = TruePath(p.health->path());
  pj["path"] = path;
  const bool same = path == decision || (path == "relay-tcp" && decision == "relay") ||
                    (path == "relay" && decision == "relay-tcp");
  if (!same && !p.health->reason().empty()) pj["why"] = p.health->reason();
  if (!EndpointText(p.health->endpoint()).empty()) pj["endpoint"] = EndpointText(p.health->endpoint());
  if (p.health->last_handshake_unix_ms() > 0) {
    pj["lastHandshake"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(p.health->last_handshake_unix_ms()),
                                           absl::UTCTimeZone());
  }
  if (p.health->rtt_us() > 0) pj["rttMicros"] = p.health->rtt_us();
  if (p.health->path_mtu() > 0) pj["pathMtu"] = p.health->path_mtu();
  return pj;
}

nlohmann::json SnatJson(const nat::SnatDiagnosis& d, const v1::NodeInfo& info) {
  nlohmann::json j = {{"randomized", d.randomized}, {"reason", d.reason}, {"message", d.message},
                      {"sources", d.sources},
                      {"nodeRules", std::vector<std::string>(info.snat().randomizing_rules().begin(),
                                                             info.snat().randomizing_rules().end())},
                      {"mitigationInstalled", info.snat().mitigation_installed()}};
  if (info.snat().has_before_mitigation()) j["natBeforeMitigation"] = NatTypeOf(info.snat().before_mitigation());
  return j;
}

std::string NatTypeOf(const v1::NatReport& nat) {
  if (nat.no_route()) return "no-ipv4";
  if (nat.udp_blocked()) return "udp-blocked";
  switch (nat.mapping()) {
    case v1::NAT_MAPPING_NONE: return "public";
    case v1::NAT_MAPPING_ENDPOINT_INDEPENDENT: return "easy";
    case v1::NAT_MAPPING_ENDPOINT_DEPENDENT: return "hard";
    default: return "unknown";
  }
}

nlohmann::json Nat6Json(const v1::NatReport& nat6) {
  const char* type = nat6.no_route()                                ? "no-ipv6"
                     : nat6.udp_blocked()                           ? "udp-blocked"
                     : nat6.mapping() == v1::NAT_MAPPING_NONE       ? "public"
                     : nat6.has_reflexive()                         ? "translated"
                                                                    : "unknown";
  nlohmann::json j = {{"type", type}, {"reason", nat6.reason()}};
  if (nat6.has_reflexive()) j["reflexive"] = EndpointText(nat6.reflexive());
  return j;
}

nlohmann::json WeftNodeStatus(const NodeView& view) {
  const v1::NodeInfo& n = view.info;
  const nat::NodeNat self = api::NodeNatOf(n);
  nlohmann::json status = {
      {"nat",
       {{"type", NatTypeOf(n.nat())},
        {"mapping", std::string(nat::MappingName(self.nat.mapping))},
        {"filtering", std::string(nat::FilteringName(self.nat.filtering))},
        {"portPreserved", n.nat().port_preserved()},
        {"publicIP", n.nat().public_ip()},
        {"reason", n.nat().reason()}}},
      {"endpoint", EndpointText(n.nat().reflexive())},
      {"podCIDRs", std::vector<std::string>(n.pod_cidrs().begin(), n.pod_cidrs().end())},
      {"agentConnected", view.connected},
      {"wireguard", api::WireGuardBackendName(n.wireguard_backend())},
  };
  // The other family: the WireGuard port at the node's global IPv6 address (no NAT).
  if (auto v6 = api::GlobalIpv6Of(n)) status["endpointIPv6"] = v6->ToString();
  if (n.has_nat6()) status["natIPv6"] = Nat6Json(n.nat6());
  if (!view.provider_id.empty()) status["providerID"] = view.provider_id;
  int direct = 0, relayed = 0, down = 0;
  nlohmann::json peers = nlohmann::json::array();
  for (const PeerView& p : view.peers) {
    nlohmann::json pj = PeerJson(p, "name");
    // Counted by the path WireGuard uses, once a handshake completed over it.
    const std::string path = pj["path"];
    if (!p.health || p.health->last_handshake_unix_ms() <= 0 || path == "none" || path == "unknown") ++down;
    else if (path == "direct") ++direct;
    else ++relayed;
    peers.push_back(std::move(pj));
  }
  status["peers"] = std::move(peers);
  status["directPeers"] = direct;
  status["relayedPeers"] = relayed;
  status["unreachablePeers"] = down;
  const bool ready = view.connected && n.nat().mapping() != v1::NAT_MAPPING_UNSPECIFIED;
  status["ready"] = ready;
  status["snat"] = SnatJson(view.snat, n);
  status["conditions"] = nlohmann::json::array(
      {{{"type", "SNATRandomized"}, {"status", view.snat.randomized ? "True" : "False"}, {"reason", view.snat.reason},
        {"message", view.snat.message}}});
  std::string report;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(n, &report, o);
  status["report"] = nlohmann::json::parse(report, nullptr, false);
  return status;
}

void SetTransitionTimes(const nlohmann::json& previous, const std::string& now, nlohmann::json& status) {
  // A string field of an object, "" otherwise (what an earlier leader wrote may be anything).
  auto str = [](const nlohmann::json& o, const char* key) -> std::string {
    if (!o.is_object()) return "";
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto conditions = status.find("conditions");
  if (conditions == status.end() || !conditions->is_array()) return;
  for (auto& c : *conditions) {
    if (!c.is_object()) continue;
    std::string since = now;
    if (previous.is_array()) {
      for (const auto& p : previous) {
        if (str(p, "type") == str(c, "type") && str(p, "status") == str(c, "status") &&
            !str(p, "lastTransitionTime").empty()) {
          since = str(p, "lastTransitionTime");
        }
      }
    }
    c["lastTransitionTime"] = since;
  }
}

absl::StatusOr<v1::NodeInfo> NodeInfoFromStatus(const nlohmann::json& status) try {
  auto r = status.find("report");
  if (r == status.end() || !r->is_object()) return absl::NotFoundError("the WeftNode status has no report");
  v1::NodeInfo n;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(r->dump(), &n, o);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("WeftNode status.report: ", s.ToString()));
  if (n.name().empty()) return absl::InvalidArgumentError("WeftNode status.report has no name");
  return n;
} catch (const nlohmann::json::exception& e) {
  return absl::InvalidArgumentError(absl::StrCat("WeftNode status: ", e.what()));
}

nlohmann::json NewWeftNode(const std::string& name) {
  return {{"apiVersion", kWeftNodeApiVersion}, {"kind", "WeftNode"}, {"metadata", {{"name", name}}}};
}

}  // namespace weft::controller
