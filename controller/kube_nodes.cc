#include "controller/kube_nodes.h"

#include <cstdio>
#include <set>

#include "lib/k8s/api_status.h"
#include "lib/k8s/node_address.h"

namespace weft::controller {

NodeFacts NodeFactsOf(const nlohmann::json& node) try {
  NodeFacts f;
  if (auto m = node.find("metadata"); m != node.end() && m->is_object()) f.uid = m->value("uid", "");
  f.reachable_ip = k8s::ReachableNodeAddress(node);
  auto spec = node.find("spec");
  if (spec == node.end() || !spec->is_object()) return f;
  if (auto c = spec->find("podCIDRs"); c != spec->end() && c->is_array()) {
    for (const auto& x : *c) {
      if (x.is_string()) f.pod_cidrs.push_back(x.get<std::string>());
    }
  }
  if (f.pod_cidrs.empty()) {
    if (auto c = spec->find("podCIDR"); c != spec->end() && c->is_string() && !c->get<std::string>().empty()) {
      f.pod_cidrs.push_back(c->get<std::string>());
    }
  }
  f.provider_id = spec->value("providerID", "");
  return f;
} catch (const nlohmann::json::exception& e) {
  return {};  // a field of the wrong type: read as nothing
}

AwsNodeSnat AwsNodeSnatOf(const nlohmann::json& ds) try {
  AwsNodeSnat out{"prng", false};
  const nlohmann::json containers =
      ds.value("spec", nlohmann::json::object()).value("template", nlohmann::json::object())
          .value("spec", nlohmann::json::object()).value("containers", nlohmann::json::array());
  for (const auto& c : containers) {
    if (!c.is_object() || c.value("name", "") != "aws-node") continue;
    for (const auto& e : c.value("env", nlohmann::json::array())) {
      if (!e.is_object() || !e.contains("value") || !e["value"].is_string()) continue;
      const std::string name = e.value("name", ""), value = e["value"].get<std::string>();
      if (name == "AWS_VPC_K8S_CNI_RANDOMIZESNAT") out.randomize_snat = value;
      if (name == "AWS_VPC_K8S_CNI_EXTERNALSNAT") out.external_snat = value == "true";
    }
  }
  return out;
} catch (const nlohmann::json::exception& e) {
  return {"prng", false};  // unreadable: the default
}

NodeCache::NodeCache(k8s::KubeClient& client, OnChange on_change)
    : on_change_(std::move(on_change)),
      reflector_(client, "/api/v1/nodes",
                 {.replace =
                      [this](std::vector<nlohmann::json> items) {
                        std::set<std::string> seen;
                        for (const auto& n : items) {
                          const std::string name = k8s::NameOf(n);
                          if (name.empty()) continue;  // not a Node object
                          seen.insert(name);
                          Set(name, NodeFactsOf(n));
                        }
                        std::vector<std::string> gone;
                        {
                          std::lock_guard<std::mutex> l(mu_);
                          for (const auto& [name, f] : nodes_) {
                            if (!seen.contains(name)) gone.push_back(name);
                          }
                        }
                        for (const auto& name : gone) Set(name, std::nullopt);
                      },
                  .event =
                      [this](const std::string& type, const nlohmann::json& n) {
                        const std::string name = k8s::NameOf(n);
                        if (name.empty()) return;  // not a Node object
                        if (type == "DELETED") Set(name, std::nullopt);
                        else Set(name, NodeFactsOf(n));
                      },
                  .error =
                      [](const absl::Status& s) {
                        std::fprintf(stderr, "weft-controller: watching Nodes: %s\n", s.ToString().c_str());
                      }}) {}

void NodeCache::Run(std::stop_token stop) { reflector_.Run(stop); }

std::optional<NodeFacts> NodeCache::Find(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

void NodeCache::Set(const std::string& name, std::optional<NodeFacts> facts) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = nodes_.find(name);
    if (!facts) {
      if (it == nodes_.end()) return;
      nodes_.erase(it);
    } else {
      if (it != nodes_.end() && it->second == *facts) return;
      nodes_[name] = *facts;
    }
  }
  if (on_change_) on_change_(name, facts ? &*facts : nullptr);
}

}  // namespace weft::controller
