#include "lib/k8s/relay_watch.h"

#include "gtest/gtest.h"

namespace weft::k8s {
namespace {

using nlohmann::json;

std::string Reachable(const std::string& node) { return node == "public-1" ? "203.0.113.7" : ""; }

TEST(RelaysFromSlicesTest, ReadyIpv4EndpointsAtTheirNodesReachableAddress) {
  // What the EndpointSlice controller writes for a Service with a UDP and a TCP port.
  const json slice = json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "weft-relay-abcde", "labels": {"kubernetes.io/service-name": "weft-relay"}},
    "addressType": "IPv4",
    "ports": [{"name": "turn-tcp", "protocol": "TCP", "port": 3478},
              {"name": "turn-udp", "protocol": "UDP", "port": 3478}],
    "endpoints": [
      {"addresses": ["10.0.1.7"], "conditions": {"ready": true}, "nodeName": "public-1"},
      {"addresses": ["10.0.2.8"], "conditions": {"ready": true, "serving": true}, "nodeName": "private-2"},
      {"addresses": ["10.0.3.9"], "conditions": {"ready": false}, "nodeName": "private-3"},
      {"addresses": ["10.0.4.1"], "conditions": {"ready": true, "terminating": true}, "nodeName": "private-4"},
      {"addresses": ["10.0.5.2"], "nodeName": "private-5"},
      {"addresses": ["10.0.1.7"], "conditions": {"ready": true}, "nodeName": "public-1"}
    ]})");
  const auto relays = RelaysFromSlices({slice}, "turn-udp", Reachable);
  ASSERT_EQ(relays.size(), 3u);
  EXPECT_EQ(relays[0].ToString(), "10.0.2.8:3478");   // no ExternalIP: the endpoint's address
  EXPECT_EQ(relays[1].ToString(), "10.0.5.2:3478");   // ready unset means ready
  EXPECT_EQ(relays[2].ToString(), "203.0.113.7:3478");  // the Node's ExternalIP, once
}

TEST(RelaysFromSlicesTest, SkipsWhatIsNotAUsableRelay) {
  const json v6 = json::parse(R"({"addressType": "IPv6", "ports": [{"protocol": "UDP", "port": 3478}],
                                  "endpoints": [{"addresses": ["2001:db8::1"]}]})");
  const json tcp_only = json::parse(R"({"addressType": "IPv4", "ports": [{"name": "turn-tcp", "port": 3478}],
                                        "endpoints": [{"addresses": ["10.0.0.1"]}]})");
  const json other_udp = json::parse(R"({"addressType": "IPv4", "ports": [{"name": "x", "protocol": "UDP", "port": 4000}],
                                         "endpoints": [{"addresses": ["10.0.0.2"]}, {"addresses": []}, 5]})");
  const json garbage = json::parse(R"({"addressType": "IPv4", "ports": "no", "endpoints": {}})");
  const auto relays = RelaysFromSlices({v6, tcp_only, other_udp, garbage, json(7)}, "turn-udp", Reachable);
  ASSERT_EQ(relays.size(), 1u);
  EXPECT_EQ(relays[0].ToString(), "10.0.0.2:4000");  // the first UDP port when none is named so
}

}  // namespace
}  // namespace weft::k8s
