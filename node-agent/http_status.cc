#include "node-agent/http_status.h"

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"

namespace weft::agent {

std::string RenderMetrics(const Agent::Status& st, const wireguard::DeviceStatus* device) {
  std::string out;
  absl::StrAppend(&out, "# HELP weft_agent_controller_connected Whether the stream to weft-controller is up.\n",
                  "# TYPE weft_agent_controller_connected gauge\n", "weft_agent_controller_connected ",
                  st.connected ? 1 : 0, "\n");
  absl::StrAppend(&out, "# HELP weft_agent_state_version The last controller state version applied.\n",
                  "# TYPE weft_agent_state_version gauge\n", "weft_agent_state_version ", st.version, "\n");
  absl::StrAppend(&out, "# HELP weft_agent_controller_messages_total Messages received from weft-controller.\n",
                  "# TYPE weft_agent_controller_messages_total counter\n", "weft_agent_controller_messages_total ",
                  st.controller_messages, "\n");
  absl::StrAppend(&out, "# HELP weft_agent_reconciles_total Writes of the WireGuard device and routes planned (one ",
                  "per burst of changes, not one per message).\n",
                  "# TYPE weft_agent_reconciles_total counter\n", "weft_agent_reconciles_total ", st.reconciles, "\n");
  absl::StrAppend(&out, "# HELP weft_agent_wireguard_backend_info The WireGuard the node runs: kernel or userspace ",
                  "(wireguard-go).\n# TYPE weft_agent_wireguard_backend_info gauge\n",
                  "weft_agent_wireguard_backend_info{backend=\"", wireguard::BackendName(st.backend), "\"} 1\n");
  std::map<std::string, int> by_path;
  for (const auto& p : st.peers) by_path[p.path]++;
  absl::StrAppend(&out, "# HELP weft_agent_peers Peers by path.\n# TYPE weft_agent_peers gauge\n");
  for (const char* path : {"direct", "none", "relay"}) {
    absl::StrAppend(&out, "weft_agent_peers{path=\"", path, "\"} ", by_path[path], "\n");
  }
  absl::StrAppend(&out, "# HELP weft_agent_peers_refused Peers some of whose state from the controller the agent ",
                  "refused (a pod CIDR outside the cluster or over another's, a key twice).\n",
                  "# TYPE weft_agent_peers_refused gauge\n", "weft_agent_peers_refused ", st.refused_peers, "\n");
  if (st.nat) {
    absl::StrAppend(&out, "# HELP weft_agent_nat_info The WireGuard port's NAT verdict.\n# TYPE weft_agent_nat_info gauge\n",
                    "weft_agent_nat_info{mapping=\"", nat::MappingName(st.nat->mapping), "\",filtering=\"",
                    nat::FilteringName(st.nat->filtering), "\",udp_blocked=\"", st.nat->udp_blocked ? "true" : "false",
                    "\"} 1\n");
  }
  if (device != nullptr) {
    std::map<std::string, std::string> names;  // key → node
    for (const auto& p : st.peers) names[p.config.public_key.ToBase64()] = p.node;
    absl::StrAppend(&out, "# HELP weft_agent_peer_path The path WireGuard uses for a peer now (its endpoint's class), ",
                    "with where the agent sends (wanted) and the pair's decision.\n",
                    "# TYPE weft_agent_peer_path gauge\n");
    for (const auto& p : st.peers) {
      for (const auto& d : device->peers) {
        if (d.public_key != p.config.public_key) continue;
        absl::StrAppend(&out, "weft_agent_peer_path{peer=\"", p.node, "\",path=\"",
                        TruePathName(EndpointPath(d.endpoint), st.relay_tcp), "\",wanted=\"", p.path,
                        "\",decision=\"", p.decision ? (p.decision->direct ? "direct" : "relay") : "none", "\"} 1\n");
      }
    }
    absl::StrAppend(&out, "# HELP weft_agent_peer_path_mtu The path MTU to a peer found by probing through the ",
                    "tunnel (0: not known yet; the device's MTU applies).\n# TYPE weft_agent_peer_path_mtu gauge\n");
    for (const auto& p : st.peers) {
      absl::StrAppend(&out, "weft_agent_peer_path_mtu{peer=\"", p.node, "\"} ", p.path_mtu, "\n");
    }
    absl::StrAppend(&out, "# HELP weft_wireguard_peer_last_handshake_seconds When the last handshake with a peer ",
                    "completed (Unix time; 0: never).\n# TYPE weft_wireguard_peer_last_handshake_seconds gauge\n");
    for (const auto& p : device->peers) {
      absl::StrAppend(&out, "weft_wireguard_peer_last_handshake_seconds{peer=\"", names[p.public_key.ToBase64()], "\"} ",
                      std::chrono::duration_cast<std::chrono::seconds>(p.last_handshake.time_since_epoch()).count(),
                      "\n");
    }
    absl::StrAppend(&out, "# HELP weft_wireguard_peer_rx_bytes Bytes received from a peer.\n",
                    "# TYPE weft_wireguard_peer_rx_bytes counter\n");
    for (const auto& p : device->peers) {
      absl::StrAppend(&out, "weft_wireguard_peer_rx_bytes{peer=\"", names[p.public_key.ToBase64()], "\"} ", p.rx_bytes, "\n");
    }
    absl::StrAppend(&out, "# HELP weft_wireguard_peer_tx_bytes Bytes sent to a peer.\n",
                    "# TYPE weft_wireguard_peer_tx_bytes counter\n");
    for (const auto& p : device->peers) {
      absl::StrAppend(&out, "weft_wireguard_peer_tx_bytes{peer=\"", names[p.public_key.ToBase64()], "\"} ", p.tx_bytes, "\n");
    }
  }
  return out;
}

bool Ready(const Agent::Status& st, std::string* why) {
  if (!st.configured) {
    *why = "waiting for pod CIDRs from the controller";
    return false;
  }
  if (!st.nat) {
    *why = "waiting for the first NAT verdict";
    return false;
  }
  *why = "ready";
  return true;
}

}  // namespace weft::agent
