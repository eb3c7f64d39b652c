#include "lib/config/cni_netconf.h"

#include "gtest/gtest.h"
#include "lib/config/cni_error.h"
#include "lib/testing/status_matchers.h"

namespace weft::cni {
namespace {

constexpr char kGood[] = R"({
  "cniVersion": "1.0.0", "name": "weft", "type": "weft",
  "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"], "mtu": 1420,
  "dataDir": "/run/weft-test"
})";

TEST(CniNetConfTest, ParsesTheConfigTheAgentWrites) {
  auto c = ParseCniNetConf(kGood);
  WEFT_ASSERT_OK(c);
  EXPECT_EQ(c->cni_version, "1.0.0");
  EXPECT_EQ(c->name, "weft");
  ASSERT_EQ(c->pod_cidrs.size(), 2u);
  EXPECT_EQ(c->pod_cidrs[1].ToString(), "fd00:10:244:1::/64");
  EXPECT_EQ(c->mtu, 1420);
  EXPECT_EQ(c->data_dir, "/run/weft-test");
  EXPECT_FALSE(c->prev_result.has_value());
}

TEST(CniNetConfTest, DefaultsAndChainingFields) {
  auto c = ParseCniNetConf(R"({"cniVersion":"1.1.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],
    "prevResult":{"ips":[]},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],
    "runtimeConfig":{"portMappings":[]},"args":{"x":1}})");
  WEFT_ASSERT_OK(c);
  EXPECT_EQ(c->data_dir, kDefaultDataDir);
  EXPECT_EQ(c->mtu, 0);
  ASSERT_TRUE(c->prev_result.has_value());
  ASSERT_TRUE(c->valid_attachments.has_value());
  EXPECT_EQ((*c->valid_attachments)[0].container_id, "a");
}

struct ErrorCase {
  const char* name;
  const char* json;
  int cni_code;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class CniNetConfErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CniNetConfErrorTest, RefusedWithTheSpecCode) {
  auto c = ParseCniNetConf(GetParam().json);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(CniCodeOf(c.status()), GetParam().cni_code) << c.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CniNetConfErrorTest,
    ::testing::ValuesIn(std::vector<ErrorCase>{
        {"truncated_json", R"({"cniVersion": "1.0.0", "name": )", kDecodeFailure},
        {"not_json", "hello", kDecodeFailure},
        {"json_array", "[1,2]", kDecodeFailure},
        {"empty", "", kDecodeFailure},
        {"unknown_version", R"({"cniVersion":"9.9.9","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"]})", kIncompatibleVersion},
        {"missing_version", R"({"name":"n","type":"weft","podCIDRs":["10.0.0.0/24"]})", kInvalidConfig},
        {"missing_name", R"({"cniVersion":"1.0.0","type":"weft","podCIDRs":["10.0.0.0/24"]})", kInvalidConfig},
        {"bad_name", R"({"cniVersion":"1.0.0","name":"-x","type":"weft","podCIDRs":["10.0.0.0/24"]})", kInvalidConfig},
        {"missing_cidrs", R"({"cniVersion":"1.0.0","name":"n","type":"weft"})", kInvalidConfig},
        {"bad_cidr", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/33"]})", kInvalidConfig},
        {"host_bits", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.1/24"]})", kInvalidConfig},
        {"tiny_cidr", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/31"]})", kInvalidConfig},
        {"two_v4", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24","10.1.0.0/24"]})", kInvalidConfig},
        {"cidr_not_string", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":[24]})", kInvalidConfig},
        {"mtu_string", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],"mtu":"1500"})", kInvalidConfig},
        {"mtu_small", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],"mtu":500})", kInvalidConfig},
        {"relative_datadir", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],"dataDir":"x"})", kInvalidConfig},
        {"prev_not_object", R"({"cniVersion":"1.0.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],"prevResult":3})", kInvalidConfig},
        {"bad_attachments", R"({"cniVersion":"1.1.0","name":"n","type":"weft","podCIDRs":["10.0.0.0/24"],"cni.dev/valid-attachments":[{"containerID":1}]})", kInvalidConfig},
    }),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CniNetConfTest, ComparesVersions) {
  EXPECT_LT(CompareVersions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(CompareVersions("1.1.0", "1.1.0"), 0);
  EXPECT_GT(CompareVersions("1.1.0", "1.0.10"), 0);
  EXPECT_GT(CompareVersions("1.10.0", "1.9.0"), 0);
}

}  // namespace
}  // namespace weft::cni
