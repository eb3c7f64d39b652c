// Kubernetes mode: the relays are the ready endpoints of the relay Service (its
// EndpointSlices, watched). Relays run with hostNetwork on nodes with public addresses
// (a TURN allocation's relayed ports are the relay's own, so agents must reach each
// relay at its own address, not through a load balancer): each endpoint is reached at
// its Node's ExternalIP, else at the endpoint's address.
#ifndef WEFT_LIB_K8S_RELAY_WATCH_H_
#define WEFT_LIB_K8S_RELAY_WATCH_H_

#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "lib/k8s/kube_client.h"
#include "lib/k8s/reflector.h"
#include "lib/net/endpoint.h"

namespace weft::k8s {

// The relays behind `slices` (discovery.k8s.io/v1 EndpointSlices of one Service), sorted
// and without duplicates: IPv4 endpoints that are ready and not terminating, at the UDP
// port named `port_name` (else the slice's first UDP port). `reachable_ip(node)` is the
// endpoint's Node's reachable address, "" when unknown. Pure.
std::vector<net::Endpoint> RelaysFromSlices(const std::vector<nlohmann::json>& slices, const std::string& port_name,
                                            const std::function<std::string(const std::string& node)>& reachable_ip);

class RelayWatch {
 public:
  using OnChange = std::function<void(std::vector<net::Endpoint> relays)>;
  // Watches the EndpointSlices of Service `ns`/`service`; `on_change` gets the relays
  // after every change that changes them (from Run's thread, or NodesChanged's caller).
  RelayWatch(KubeClient& client, const std::string& ns, const std::string& service,
             std::function<std::string(const std::string& node)> reachable_ip, OnChange on_change);

  void Run(std::stop_token stop);
  bool synced() const { return reflector_.synced(); }
  // A Node's addresses changed: the relays on it may be reached elsewhere now.
  void NodesChanged();

 private:
  void Publish();  // mu_ not held

  const std::function<std::string(const std::string&)> reachable_ip_;
  const OnChange on_change_;
  Reflector reflector_;
  std::mutex publish_mu_;  // taken before mu_
  std::mutex mu_;
  std::map<std::string, nlohmann::json> slices_;  // name → slice; guarded by mu_
  std::vector<net::Endpoint> last_;                // guarded by mu_
  bool published_ = false;                         // guarded by mu_
};

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_RELAY_WATCH_H_
