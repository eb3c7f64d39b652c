#include "weftctl/explain.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"

namespace weft::weftctl {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

struct Peer {
  std::string path, decision, reason, why, endpoint, last_handshake;
  int path_mtu = 0;
};

// A peer of either shape. Older controllers gave only the decision, as "path".
Peer PeerOf(const nlohmann::json& p) {
  Peer out{Str(p, "path"), Str(p, "decision"), Str(p, "reason"), Str(p, "why"), Str(p, "endpoint"),
           Str(p, "lastHandshake")};
  if (auto m = p.find("pathMtu"); m != p.end() && m->is_number_integer()) out.path_mtu = m->get<int>();
  if (out.decision.empty()) out.decision = out.path;
  return out;
}

// "relay" or "none, decided relay": the path WireGuard uses, and the decision if it differs.
std::string PathText(const Peer& p) {
  const bool same = p.path == p.decision || (p.path.starts_with("relay") && p.decision.starts_with("relay"));
  return same ? p.path : absl::StrCat(p.path, ", decided ", p.decision);
}

struct Node {
  std::string nat_type, mapping, filtering, nat_reason, endpoint, wireguard;
  json snat = json::object();
  std::map<std::string, Peer> peers;
};

// Both shapes into one: the controller's /status, or WeftNode objects.
std::map<std::string, Node> Normalize(const json& doc) {
  std::map<std::string, Node> out;
  auto add_weftnode = [&](const json& o) {
    const json st = o.value("status", json::object());
    Node n;
    const json nat = st.value("nat", json::object());
    n.nat_type = Str(nat, "type");
    n.mapping = Str(nat, "mapping");
    n.filtering = Str(nat, "filtering");
    n.nat_reason = Str(nat, "reason");
    n.endpoint = Str(st, "endpoint");
    n.wireguard = Str(st, "wireguard");
    n.snat = st.value("snat", json::object());
    for (const auto& p : st.value("peers", json::array())) n.peers[Str(p, "name")] = PeerOf(p);
    out[Str(o.value("metadata", json::object()), "name")] = std::move(n);
  };
  if (doc.is_object() && doc.contains("nodes") && doc["nodes"].is_array()) {  // /status
    for (const auto& x : doc["nodes"]) {
      Node n;
      const json nat = x.value("nat", json::object());
      n.mapping = Str(nat, "mapping");
      n.filtering = Str(nat, "filtering");
      n.nat_reason = Str(nat, "reason");
      n.endpoint = Str(nat, "reflexive");
      n.nat_type = nat.value("noIPv4", false)                 ? "no-ipv4"
                   : nat.value("udpBlocked", false)             ? "udp-blocked"
                   : n.mapping == "none"                       ? "public"
                   : n.mapping == "endpoint-independent"       ? "easy"
                   : n.mapping == "endpoint-dependent"         ? "hard"
                                                               : "unknown";
      n.snat = x.value("snat", json::object());
      n.wireguard = Str(x, "wireguard");
      for (const auto& p : x.value("peers", json::array())) n.peers[Str(p, "peer")] = PeerOf(p);
      out[Str(x, "name")] = std::move(n);
    }
  } else if (doc.is_object() && (Str(doc, "kind") == "WeftNodeList" || Str(doc, "kind") == "List")) {
    // `kubectl get weftnodes -o json` prints a List (kind "List"), the API a WeftNodeList.
    for (const auto& o : doc.value("items", json::array())) {
      if (o.is_object() && Str(o, "kind") == "WeftNode") add_weftnode(o);
    }
  } else if (doc.is_object() && Str(doc, "kind") == "WeftNode") {
    add_weftnode(doc);
  }
  return out;
}

void DescribeNode(const std::string& name, const Node& n, std::string& out) {
  absl::StrAppend(&out, "node ", name, ": NAT ", n.nat_type.empty() ? "unknown" : n.nat_type);
  if (!n.mapping.empty()) absl::StrAppend(&out, " (mapping ", n.mapping, ", filtering ", n.filtering, ")");
  if (!n.endpoint.empty()) absl::StrAppend(&out, ", public endpoint ", n.endpoint);
  if (!n.wireguard.empty() && n.wireguard != "unknown") absl::StrAppend(&out, ", WireGuard ", n.wireguard);
  absl::StrAppend(&out, "\n");
  if (!n.nat_reason.empty()) absl::StrAppend(&out, "  ", n.nat_reason, "\n");
  if (n.snat.empty()) return;
  const bool randomized = n.snat.value("randomized", false);
  absl::StrAppend(&out, "  SNAT randomization: ", randomized ? "yes" : "no", " (", Str(n.snat, "reason"), ")\n");
  if (!Str(n.snat, "message").empty()) absl::StrAppend(&out, "  ", Str(n.snat, "message"), "\n");
  const json sources = n.snat.value("sources", json::array());
  if (!sources.empty()) {
    absl::StrAppend(&out, "  evidence:\n");
    for (const auto& s : sources) {
      if (s.is_string()) absl::StrAppend(&out, "    - ", s.get<std::string>(), "\n");
    }
  }
}

}  // namespace

absl::StatusOr<std::string> Explain(const json& status, const std::string& node, const std::string& peer) {
  const std::map<std::string, Node> nodes = Normalize(status);
  if (nodes.empty()) return absl::InvalidArgumentError("no nodes: give the controller's /status or WeftNode objects");
  auto self = nodes.find(node);
  if (self == nodes.end()) return absl::NotFoundError(absl::StrCat("no node \"", node, "\" in the status"));
  std::string out;
  DescribeNode(node, self->second, out);
  if (peer.empty()) {
    for (const auto& [name, p] : self->second.peers) {
      absl::StrAppend(&out, "  ", node, " -> ", name, ": ", PathText(p), " (", p.why.empty() ? p.reason : p.why, ")\n");
    }
    return out;
  }
  auto p = self->second.peers.find(peer);
  if (p == self->second.peers.end()) {
    return absl::NotFoundError(absl::StrCat("node \"", node, "\" has no peer \"", peer, "\""));
  }
  const Peer& pp = p->second;
  absl::StrAppend(&out, "\n", node, " -> ", peer, ": ", PathText(pp), "\n  why: ", pp.reason, "\n");
  if (!pp.why.empty()) absl::StrAppend(&out, "  now: ", pp.why, "\n");
  if (!pp.endpoint.empty()) absl::StrAppend(&out, "  WireGuard endpoint: ", pp.endpoint, "\n");
  if (!pp.last_handshake.empty()) absl::StrAppend(&out, "  last handshake: ", pp.last_handshake, "\n");
  if (pp.path_mtu > 0) absl::StrAppend(&out, "  path MTU: ", pp.path_mtu, " (found by probing through the tunnel)\n");
  absl::StrAppend(&out, "\n");
  if (auto other = nodes.find(peer); other != nodes.end()) DescribeNode(peer, other->second, out);
  return out;
}

}  // namespace weft::weftctl
