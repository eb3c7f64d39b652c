#include "lib/k8s/node_address.h"

#include "gtest/gtest.h"

namespace weft::k8s {
namespace {

TEST(ReachableNodeAddressTest, ExternalFirstThenInternalIpv4Only) {
  auto node = nlohmann::json::parse(R"({"status":{"addresses":[
      {"type":"InternalIP","address":"fd00::5"},
      {"type":"InternalIP","address":"10.0.1.5"},
      {"type":"Hostname","address":"ip-10-0-1-5"},
      {"type":"ExternalIP","address":"2001:db8::5"},
      {"type":"ExternalIP","address":"203.0.113.5"}]}})");
  EXPECT_EQ(ReachableNodeAddress(node), "203.0.113.5");
  node["status"]["addresses"].erase(4);
  EXPECT_EQ(ReachableNodeAddress(node), "10.0.1.5");
  EXPECT_EQ(ReachableNodeAddress(nlohmann::json::parse(R"({"status":{"addresses":"bad"}})")), "");
  EXPECT_EQ(ReachableNodeAddress(nlohmann::json::parse(R"({"metadata":{}})")), "");
  EXPECT_EQ(ReachableNodeAddress(nlohmann::json::parse(R"({"status":{"addresses":[{"type":"ExternalIP"},7]}})")), "");
}

}  // namespace
}  // namespace weft::k8s
