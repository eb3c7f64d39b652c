// The relay supervisor: holds one allocation on one of the controller's relays (through
// the relay forwarder, which outlives the agent), moves on when that relay stops
// answering or leaves the list, and gives the reconcile each relayed peer's local proxy.
#include "absl/strings/str_cat.h"
#include "lib/api/node_nat.h"
#include "node-agent/agent.h"
#include "node-agent/agent_internal.h"

namespace weft::agent {

bool Agent::RelayListed(const net::Endpoint& server) const {
  for (const auto& r : relays_) {
    if (r.address().ip() == server.ip.ToString() && r.address().port() == server.port) return true;
  }
  return false;
}

void Agent::SetRelays(const google::protobuf::RepeatedPtrField<v1::RelayServer>& relays) {
  relays_.assign(relays.begin(), relays.end());
  StartRelay();
}

void Agent::StartRelay() {
  if (relays_.empty() || relay_supervisor_.joinable()) return;
  relay_supervisor_ = std::jthread([this](std::stop_token st) { SuperviseRelay(st); });
}

// Allocates on a relay (starting at one picked by the node's name, which spreads nodes
// over the relays), and when that relay stops answering or leaves the controller's list,
// moves to the next; peers follow the new RELAYED candidate. The list is read afresh each
// round (RelayList replaces it). Only this thread replaces relay_; its calls (alive,
// Allocate, Stop) are made outside mu_.
void Agent::SuperviseRelay(std::stop_token st) {
  std::optional<size_t> next;  // after a failure, the relay after the one that failed
  auto sleep = [&](int ms) {
    for (int i = 0; i < ms / 50 && !st.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  };
  while (!st.stop_requested()) {
    std::shared_ptr<ForwarderClient> current;
    bool listed = false;
    {
      absl::MutexLock l(&mu_);
      current = relay_;
      listed = current && RelayListed(current->server());
    }
    if (current && listed) {
      if (current->alive()) {
        sleep(200);
        continue;
      }
    }
    if (current) {
      Log(absl::StrCat("relay ", current->server().ToString(),
                       listed ? " stopped answering: moving on" : " is no longer listed: moving on"));
      {
        absl::MutexLock l(&mu_);
        relay_.reset();
      }
      AskReconcile(kReport);  // no RELAYED candidate until the next allocation
      (void)current->Stop();  // releases the allocation; the forwarder exits
      current.reset();
    }
    std::vector<v1::RelayServer> relays;
    bool udp_blocked = false;
    {
      absl::MutexLock l(&mu_);
      relays = relays_;
      udp_blocked = verdict_ && verdict_->udp_blocked;
    }
    if (relays.empty()) {
      sleep(200);
      continue;
    }
    size_t first = next.value_or(std::hash<std::string>{}(opts_.node)) % relays.size();
    bool allocated = false;
    for (size_t k = 0; k < relays.size() && !allocated && !st.stop_requested(); ++k) {
      const auto& r = relays[(first + k) % relays.size()];
      auto ip = net::IpAddress::Parse(r.address().ip());
      if (!ip.ok()) continue;
      bool tcp = udp_blocked;  // UDP blocked: TURN over TCP (the relays listen on TCP on the same port)
      RelayClient::Options ro{.server = {*ip, static_cast<uint16_t>(r.address().port())},
                              .username = r.username(), .password = r.password(), .wg_port = opts_.wg_port,
                              .tcp = tcp};
      const std::string socket = RelayForwarderSocket(opts_.state_dir);
      const ForwarderClient::LaunchOptions launch{.launch = !opts_.relay_forwarder_sidecar};
      auto c = ForwarderClient::Allocate(socket, ro, launch);
      if (!c.ok() && !tcp && absl::IsDeadlineExceeded(c.status())) {
        ro.tcp = tcp = true;  // no UDP answer (the verdict may not say so yet): try the stream
        c = ForwarderClient::Allocate(socket, ro, launch);
      }
      if (!c.ok()) {
        Log(absl::StrCat("relay ", r.address().ip(), ":", r.address().port(), ": ", c.status().ToString()));
        continue;
      }
      next = (first + k + 1) % relays.size();
      std::shared_ptr<ForwarderClient> got = *std::move(c);
      Log(absl::StrCat("relay ", got->server().ToString(), tcp ? " (TCP)" : "", ": allocated ",
                       got->relayed().ToString()));
      {
        absl::MutexLock l(&mu_);
        relay_ = std::move(got);
      }
      AskReconcile(kReport);  // the RELAYED candidate out; relayed pairs through it
      allocated = true;
    }
    if (!allocated) sleep(2000);
  }
}

std::map<std::string, net::Endpoint> Agent::RelayProxies() {
  // Each peer's local relay proxy, looked up once per reconcile: a channel to every peer
  // that has a relayed address, whatever the pair's path, so that when a direct path dies
  // and one side falls back, the other receives through the relay at once (WireGuard
  // follows the packets' source).
  std::shared_ptr<ForwarderClient> relay;
  std::vector<std::pair<std::string, std::vector<net::Endpoint>>> relayed;  // peer → its relayed addresses
  {
    absl::MutexLock l(&mu_);
    relay = relay_;
    if (!relay) return {};
    for (const auto& [name, n] : nodes_) {
      if (name == opts_.node) continue;
      std::vector<net::Endpoint> at;
      for (const auto& c : n.candidates()) {
        if (c.type() != v1::CANDIDATE_TYPE_RELAYED) continue;
        if (auto e = api::EndpointOf(c.endpoint())) at.push_back(*e);
      }
      if (!at.empty()) relayed.emplace_back(name, std::move(at));
    }
  }
  std::map<std::string, net::Endpoint> proxies;
  for (const auto& [name, at] : relayed) {
    for (const auto& e : at) {
      if (auto proxy = relay->ProxyFor(e); proxy.ok()) {
        proxies[name] = *proxy;
        break;
      }
    }
  }
  return proxies;
}

}  // namespace weft::agent
