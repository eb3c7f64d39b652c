#include "lib/k8s/relay_watch.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "lib/k8s/api_status.h"

namespace weft::k8s {
namespace {

using nlohmann::json;

// The UDP port the relays serve TURN on, 0 when the slice has none.
int PortOf(const json& slice, const std::string& name) {
  auto ports = slice.find("ports");
  if (ports == slice.end() || !ports->is_array()) return 0;
  int first_udp = 0;
  for (const auto& p : *ports) {
    if (!p.is_object() || !p.contains("port") || !p["port"].is_number_integer()) continue;
    if (p.value("protocol", "TCP") != "UDP") continue;  // TCP is the default protocol
    const int port = p["port"].get<int>();
    if (port <= 0 || port > 65535) continue;
    if (p.value("name", "") == name) return port;
    if (first_udp == 0) first_udp = port;
  }
  return first_udp;
}

bool Condition(const json& endpoint, const char* name, bool unset) {
  auto c = endpoint.find("conditions");
  if (c == endpoint.end() || !c->is_object()) return unset;
  auto v = c->find(name);
  if (v == c->end() || !v->is_boolean()) return unset;  // nil: "unknown", which for ready means ready
  return v->get<bool>();
}

}  // namespace

std::vector<net::Endpoint> RelaysFromSlices(const std::vector<json>& slices, const std::string& port_name,
                                            const std::function<std::string(const std::string&)>& reachable_ip) try {
  std::vector<net::Endpoint> out;
  for (const auto& s : slices) {
    if (!s.is_object() || s.value("addressType", "") != "IPv4") continue;
    const int port = PortOf(s, port_name);
    auto endpoints = s.find("endpoints");
    if (port == 0 || endpoints == s.end() || !endpoints->is_array()) continue;
    for (const auto& e : *endpoints) {
      if (!e.is_object() || !Condition(e, "ready", true) || Condition(e, "terminating", false)) continue;
      std::string ip;
      if (e.contains("nodeName") && e["nodeName"].is_string()) ip = reachable_ip(e["nodeName"].get<std::string>());
      if (ip.empty()) {
        auto a = e.find("addresses");
        if (a != e.end() && a->is_array() && !a->empty() && (*a)[0].is_string()) ip = (*a)[0].get<std::string>();
      }
      auto parsed = net::IpAddress::Parse(ip);
      if (!parsed.ok() || !parsed->is_v4()) continue;
      out.push_back({*parsed, static_cast<uint16_t>(port)});
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
} catch (const nlohmann::json::exception& e) {
  return {};  // unreadable slices: no relays from them
}

RelayWatch::RelayWatch(KubeClient& client, const std::string& ns, const std::string& service,
                       std::function<std::string(const std::string&)> reachable_ip, OnChange on_change)
    : reachable_ip_(std::move(reachable_ip)),
      on_change_(std::move(on_change)),
      reflector_(client,
                 absl::StrCat("/apis/discovery.k8s.io/v1/namespaces/", ns,
                              "/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D", service),
                 {.replace =
                      [this](std::vector<json> items) {
                        {
                          std::lock_guard<std::mutex> l(mu_);
                          slices_.clear();
                          for (auto& s : items) {
                            const std::string name = NameOf(s);
                            slices_[name] = std::move(s);
                          }
                        }
                        Publish();
                      },
                  .event =
                      [this](const std::string& type, const json& s) {
                        {
                          std::lock_guard<std::mutex> l(mu_);
                          const std::string name = NameOf(s);
                          if (type == "DELETED") slices_.erase(name);
                          else slices_[name] = s;
                        }
                        Publish();
                      },
                  .error =
                      [ns, service](const absl::Status& s) {
                        std::fprintf(stderr, "watching the endpoints of Service %s/%s: %s\n",
                                     ns.c_str(), service.c_str(), s.ToString().c_str());
                      }}) {}

void RelayWatch::Run(std::stop_token stop) { reflector_.Run(stop); }

void RelayWatch::NodesChanged() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!published_) return;  // nothing listed yet: the first list publishes
  }
  Publish();
}

void RelayWatch::Publish() {
  // One at a time, so that two callers cannot hand on_change_ their lists out of order.
  std::lock_guard<std::mutex> p(publish_mu_);
  std::vector<net::Endpoint> relays;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<json> slices;
    for (const auto& [name, s] : slices_) slices.push_back(s);
    relays = RelaysFromSlices(slices, "turn-udp", reachable_ip_);
    if (published_ && relays == last_) return;
    last_ = relays;
    published_ = true;
  }
  on_change_(std::move(relays));
}

}  // namespace weft::k8s
