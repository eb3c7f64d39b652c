#include "lib/wireguard/backend.h"

#include "gtest/gtest.h"

namespace weft::wireguard {
namespace {

TEST(BackendTest, ParsesTheFlag) {
  EXPECT_EQ(*ParseBackendChoice("auto"), BackendChoice::kAuto);
  EXPECT_EQ(*ParseBackendChoice("kernel"), BackendChoice::kKernel);
  EXPECT_EQ(*ParseBackendChoice("userspace"), BackendChoice::kUserspace);
  EXPECT_FALSE(ParseBackendChoice("Kernel").ok());
  EXPECT_FALSE(ParseBackendChoice("").ok());
}

TEST(BackendTest, KindsOfLinks) {
  EXPECT_EQ(BackendOfLinkKind("wireguard"), Backend::kKernel);
  EXPECT_EQ(BackendOfLinkKind("tun"), Backend::kUserspace);
  EXPECT_EQ(BackendOfLinkKind("veth"), std::nullopt);
  EXPECT_EQ(BackendOfLinkKind(""), std::nullopt);
}

struct Row {
  const char* name;
  BackendChoice choice;
  std::optional<Backend> existing;
  bool kernel_can;
  // Expected:
  bool ok;
  Backend use;
  bool adopt, remove;
};

class PlanTest : public ::testing::TestWithParam<Row> {};

TEST_P(PlanTest, Plans) {
  const Row& r = GetParam();
  auto p = PlanBackend(r.choice, r.existing, r.kernel_can);
  ASSERT_EQ(p.ok(), r.ok) << p.status();
  if (!r.ok) {
    EXPECT_TRUE(absl::IsFailedPrecondition(p.status()));
    return;
  }
  EXPECT_EQ(p->use, r.use) << p->why;
  EXPECT_EQ(p->adopt, r.adopt) << p->why;
  EXPECT_EQ(p->remove_existing, r.remove) << p->why;
}

constexpr auto K = Backend::kKernel;
constexpr auto U = Backend::kUserspace;
INSTANTIATE_TEST_SUITE_P(
    Rows, PlanTest,
    ::testing::Values(
        // This machine: no module, auto is wireguard-go, a running one is adopted.
        Row{"AutoWithoutModule", BackendChoice::kAuto, std::nullopt, false, true, U, false, false},
        Row{"AutoWithoutModuleAdoptsWireguardGo", BackendChoice::kAuto, U, false, true, U, true, false},
        Row{"AutoWithModule", BackendChoice::kAuto, std::nullopt, true, true, K, false, false},
        Row{"AutoAdoptsAKernelDevice", BackendChoice::kAuto, K, true, true, K, true, false},
        // The module loaded later: the node moves to the kernel, wireguard-go's device goes.
        Row{"AutoMovesAWireguardGoNodeToTheKernel", BackendChoice::kAuto, U, true, true, K, false, true},
        Row{"KernelWithoutModuleFails", BackendChoice::kKernel, std::nullopt, false, false, K, false, false},
        Row{"KernelWithoutModuleFailsOverWireguardGo", BackendChoice::kKernel, U, false, false, K, false, false},
        Row{"KernelAdopts", BackendChoice::kKernel, K, false, true, K, true, false},
        Row{"UserspaceAsked", BackendChoice::kUserspace, std::nullopt, true, true, U, false, false},
        // The flag changed to userspace: the kernel device goes.
        Row{"UserspaceReplacesAKernelDevice", BackendChoice::kUserspace, K, true, true, U, false, true},
        Row{"UserspaceAdopts", BackendChoice::kUserspace, U, true, true, U, true, false}),
    [](const ::testing::TestParamInfo<Row>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace weft::wireguard
