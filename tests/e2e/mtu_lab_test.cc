// The node's uplink MTU sets the WireGuard and pod MTU (issue: path MTU, the uplink
// part): a node whose own link is 1400 (a VPN, PPPoE, a cloud below 1500) gets 1320 on
// weft0 and in its conflist, its neighbour on 1500 keeps 1420, and full-size TCP between
// their pods moves. Root: the NAT lab.
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lab/lab_cluster.h"

namespace weft::lab {
namespace {

constexpr char kTools[] = "turnserver wireguard-go python3";

int DeviceMtu(LabCluster& c, const std::string& node) {
  std::string out;
  c.lab().ns("n-" + node).Exec("cat /sys/class/net/" + c.WireGuardName(node) + "/mtu 2>/dev/null || "
                               "ip -o link show " + c.WireGuardName(node), &out);
  if (auto p = out.find(" mtu "); p != std::string::npos) return std::atoi(out.c_str() + p + 5);
  return std::atoi(out.c_str());
}

TEST(MtuLabTest, UplinkMtuSetsTunnelAndPodMtu) {
  if (std::string why = testing::MissingForRootTest(kTools); !why.empty()) GTEST_SKIP() << why;
  auto spec = ParseLabSpec(R"({"stun_servers": 3, "sites": [
      {"name": "vpn", "nat": "easy", "nodes": ["low1"]},
      {"name": "dc", "nat": "none", "nodes": ["dc1"]}]})");
  ASSERT_TRUE(spec.ok());
  auto c = LabCluster::Create(*spec, {WEFT_CONTROLLER_BINARY, WEFT_AGENT_BINARY, WEFT_CNI_BINARY},
                              /*start_agents=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  LabCluster& cluster = **c;
  ASSERT_EQ(cluster.lab().ns("n-low1").Exec("ip link set eth0 mtu 1400"), 0);
  for (const char* n : {"low1", "dc1"}) {
    ASSERT_TRUE(cluster.StartAgent(n).ok()) << cluster.AgentLog(n);
    ASSERT_TRUE(cluster.AddPod(n).ok());
  }
  auto low = nlohmann::json::parse(cluster.Conflist("low1"), nullptr, false);
  auto dc = nlohmann::json::parse(cluster.Conflist("dc1"), nullptr, false);
  ASSERT_TRUE(low.is_object() && dc.is_object());
  EXPECT_EQ(low["plugins"][0]["mtu"], 1320) << cluster.AgentLog("low1");
  EXPECT_EQ(dc["plugins"][0]["mtu"], 1420) << cluster.AgentLog("dc1");
  EXPECT_EQ(DeviceMtu(cluster, "low1"), 1320);
  EXPECT_EQ(DeviceMtu(cluster, "dc1"), 1420);
  EXPECT_NE(cluster.AgentLog("low1").find("uplink MTU 1400: WireGuard and pod MTU 1320"), std::string::npos);

  // 1 MiB of full-size segments each way between the pods.
  ASSERT_TRUE(cluster.PodPing("low1", cluster.PodIp("dc1"), 15));
  for (auto [from, to] : {std::pair{"low1", "dc1"}, std::pair{"dc1", "low1"}}) {
    SCOPED_TRACE(absl::StrCat(from, " -> ", to));
    const std::string server =
        "python3 -c \"import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('0.0.0.0',5201));s.listen(1);s.settimeout(20);c,_=s.accept();n=0\n"
        "while True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n)\"";
    std::string got;
    std::thread srv([&] { cluster.Pod(to).Exec(server, &got); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::string client = absl::StrCat("python3 -c \"import socket;c=socket.create_connection(('",
                                            cluster.PodIp(to), "',5201),timeout=20);c.sendall(b'x'*1048576);c.close()\"");
    EXPECT_EQ(cluster.Pod(from).Exec(client), 0);
    srv.join();
    EXPECT_EQ(got, "1048576\n");
  }
}

}  // namespace
}  // namespace weft::lab
