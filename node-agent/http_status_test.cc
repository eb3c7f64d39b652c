#include "node-agent/http_status.h"

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

TEST(HttpStatusTest, MetricsAndReadiness) {
  Agent::Status st;
  std::string why;
  EXPECT_FALSE(Ready(st, &why));
  EXPECT_NE(why.find("pod CIDRs"), std::string::npos);
  st.configured = true;
  EXPECT_FALSE(Ready(st, &why));
  st.nat = nat::Verdict{.mapping = nat::Mapping::kEndpointIndependent};
  EXPECT_TRUE(Ready(st, &why)) << "a missing controller does not make a node unready";
  PlannedPeer p{"dc1"};
  p.path = "relay";  // the agent fell back...
  p.decision = nat::PairDecision{.direct = true};
  st.peers.push_back(p);
  st.connected = true;
  wireguard::DeviceStatus dev;
  dev.peers.push_back(wireguard::PeerStatus{.public_key = p.config.public_key, .rx_bytes = 42});
  dev.peers[0].endpoint = *net::Endpoint::Parse("203.0.113.9:51820");  // ...but WireGuard roamed to direct
  const std::string m = RenderMetrics(st, &dev);
  EXPECT_NE(m.find("weft_agent_controller_connected 1"), std::string::npos) << m;
  EXPECT_NE(m.find("weft_agent_peers{path=\"relay\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("weft_agent_peer_path{peer=\"dc1\",path=\"direct\",wanted=\"relay\",decision=\"direct\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("mapping=\"endpoint-independent\""), std::string::npos) << m;
  EXPECT_NE(m.find("weft_wireguard_peer_rx_bytes{peer=\"dc1\"} 42"), std::string::npos) << m;
}

}  // namespace
}  // namespace weft::agent
