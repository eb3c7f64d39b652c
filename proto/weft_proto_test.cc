// The API's wire format round-trips, and the service stub is there.
#include "gtest/gtest.h"
#include "weft/v1/weft.grpc.pb.h"
#include "weft/v1/weft.pb.h"

namespace {

TEST(WeftProtoTest, NodeInfoRoundTrips) {
  weft::v1::AgentMessage m;
  auto* node = m.mutable_node();
  node->set_name("home1");
  node->set_wireguard_public_key(std::string(32, '\x42'));
  node->add_pod_cidrs("10.244.1.0/24");
  auto* c = node->add_candidates();
  c->set_type(weft::v1::CANDIDATE_TYPE_SERVER_REFLEXIVE);
  c->mutable_endpoint()->set_ip("198.51.100.21");
  c->mutable_endpoint()->set_port(51820);
  node->mutable_nat()->set_mapping(weft::v1::NAT_MAPPING_ENDPOINT_INDEPENDENT);
  std::string wire;
  ASSERT_TRUE(m.SerializeToString(&wire));
  weft::v1::AgentMessage back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.msg_case(), weft::v1::AgentMessage::kNode);
  EXPECT_EQ(back.node().candidates(0).endpoint().port(), 51820u);
}

TEST(WeftProtoTest, GarbageDoesNotParse) {
  weft::v1::ControllerMessage m;
  EXPECT_FALSE(m.ParseFromString(std::string("\xff\xff\xff\xff\x0f", 5)));
}

TEST(WeftProtoTest, ServiceHasConnect) {
  EXPECT_STREQ(weft::v1::EndpointService::service_full_name(), "weft.v1.EndpointService");
}

}  // namespace
