#include "weftctl/explain.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"

namespace weft::weftctl {
namespace {

using nlohmann::json;

struct Peer {
  std::string path, reason;
};
struct Node {
  std::string nat_type, mapping, filtering, nat_reason, endpoint;
  json snat = json::object();
  std::map<std::string, Peer> peers;
};

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

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
    n.snat = st.value("snat", json::object());
    for (const auto& p : st.value("peers", json::array())) n.peers[Str(p, "name")] = {Str(p, "path"), Str(p, "reason")};
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
      n.nat_type = nat.value("udpBlocked", false)             ? "udp-blocked"
                   : n.mapping == "none"                       ? "public"
                   : n.mapping == "endpoint-independent"       ? "easy"
                   : n.mapping == "endpoint-dependent"         ? "hard"
                                                               : "unknown";
      n.snat = x.value("snat", json::object());
      for (const auto& p : x.value("peers", json::array())) n.peers[Str(p, "peer")] = {Str(p, "path"), Str(p, "reason")};
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
      absl::StrAppend(&out, "  ", node, " -> ", name, ": ", p.path, " (", p.reason, ")\n");
    }
    return out;
  }
  auto p = self->second.peers.find(peer);
  if (p == self->second.peers.end()) {
    return absl::NotFoundError(absl::StrCat("node \"", node, "\" has no peer \"", peer, "\""));
  }
  absl::StrAppend(&out, "\n", node, " -> ", peer, ": ", p->second.path, "\n  why: ", p->second.reason, "\n\n");
  if (auto other = nodes.find(peer); other != nodes.end()) DescribeNode(peer, other->second, out);
  return out;
}

}  // namespace weft::weftctl
