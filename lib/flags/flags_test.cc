#include "lib/flags/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::flags {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Values {
  std::string node;
  std::string listen = "0.0.0.0:9476";
  bool insecure = false;
  int64_t port = 51820;
  int mtu = 1420;
  std::vector<std::string> stun;
};

FlagSet Make(Values& v) {
  FlagSet f("weft-test", "weft-test [flags]");
  f.String("node", &v.node, "NAME", "this node")
      .String("http-listen", &v.listen, "ADDR:PORT", "status")
      .Bool("insecure", &v.insecure, "no TLS")
      .Int("wg-port", &v.port, 1, 65535, "port")
      .Int("pod-mtu", &v.mtu, 0, 65535, "mtu")
      .List("stun", &v.stun, "HOST:PORT", "STUN servers");
  return f;
}

absl::StatusOr<std::vector<std::string>> ParseArgs(FlagSet& f, std::vector<const char*> args) {
  args.insert(args.begin(), "weft-test");
  return f.Parse(static_cast<int>(args.size()), args.data());
}

// The forms Kubernetes manifests and people write, all meaning the same.
TEST(FlagSetTest, EqualsAndSpaceFormsAgree) {
  const std::vector<std::vector<const char*>> forms = {
      {"--node=n1", "--wg-port=51821", "--insecure", "--stun=a:1,b:2", "--stun", "c:3"},
      {"--node", "n1", "--wg-port", "51821", "--insecure=true", "--stun", "a:1,b:2,c:3"},
      {"--stun=a:1", "--stun=b:2", "--stun=c:3", "--insecure=yes", "--wg-port=51821", "--node=n1"},
  };
  for (const auto& form : forms) {
    Values v;
    FlagSet f = Make(v);
    auto rest = ParseArgs(f, form);
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_TRUE(rest->empty());
    EXPECT_EQ(v.node, "n1");
    EXPECT_EQ(v.port, 51821);
    EXPECT_TRUE(v.insecure);
    EXPECT_THAT(v.stun, ElementsAre("a:1", "b:2", "c:3"));
    EXPECT_TRUE(f.WasSet("node"));
    EXPECT_FALSE(f.WasSet("pod-mtu"));
  }
}

TEST(FlagSetTest, EmptyValuesAndFalseBooleans) {
  Values v;
  v.insecure = true;
  FlagSet f = Make(v);
  ASSERT_TRUE(ParseArgs(f, {"--http-listen=", "--insecure=false"}).ok());
  EXPECT_EQ(v.listen, "");
  EXPECT_FALSE(v.insecure);
  Values w;
  FlagSet g = Make(w);
  ASSERT_TRUE(ParseArgs(g, {"--http-listen", ""}).ok());
  EXPECT_EQ(w.listen, "");
}

TEST(FlagSetTest, ListReplacesItsDefaultThenAppends) {
  Values v;
  v.stun = {"default:1"};
  FlagSet f = Make(v);
  ASSERT_TRUE(ParseArgs(f, {"--stun", "a:1", "--stun", "b:2"}).ok());
  EXPECT_THAT(v.stun, ElementsAre("a:1", "b:2"));
}

TEST(FlagSetTest, PositionalAndDoubleDash) {
  Values v;
  FlagSet f = Make(v);
  auto rest = ParseArgs(f, {"aws1", "--node", "n", "home1", "--", "--not-a-flag"});
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(*rest, ElementsAre("aws1", "home1", "--not-a-flag"));
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  struct Case {
    const char* name;
    std::vector<const char*> args;
    const char* message;
  } cases[] = {
      {"unknown", {"--cluster-cidr=10.0.0.0/8"}, "unknown flag --cluster-cidr"},
      {"missing value", {"--node"}, "--node needs a value (NAME)"},
      {"not a number", {"--wg-port=x"}, "--wg-port: takes a whole number from 1 to 65535, not \"x\""},
      {"out of range", {"--wg-port", "70000"}, "from 1 to 65535"},
      {"bad boolean", {"--insecure=maybe"}, "--insecure: takes true or false"},
      {"help with value", {"--help=1"}, "--help takes no value"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Values v;
    FlagSet f = Make(v);
    auto rest = ParseArgs(f, c.args);
    ASSERT_FALSE(rest.ok());
    EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(rest.status().message(), HasSubstr(c.message));
  }
}

TEST(FlagSetTest, HelpAndVersionAreRequestsNotErrors) {
  Values v;
  FlagSet f = Make(v);
  ASSERT_TRUE(ParseArgs(f, {"--help", "--version"}).ok());
  EXPECT_TRUE(f.help_requested());
  EXPECT_TRUE(f.version_requested());
  const std::string help = f.Help();
  EXPECT_THAT(help, HasSubstr("usage: weft-test [flags]"));
  EXPECT_THAT(help, HasSubstr("--wg-port N"));
  EXPECT_THAT(help, HasSubstr("(default 51820)"));
  EXPECT_THAT(help, HasSubstr("(default \"0.0.0.0:9476\")"));
  EXPECT_FALSE(VersionString().empty());
}

TEST(FlagSetTest, CustomValidatesText) {
  int hits = 0;
  FlagSet f("weft-test", "weft-test");
  f.Custom("relay", "IP:PORT", "", "relays", [&](absl::string_view v) {
    if (v.find(':') == absl::string_view::npos) return absl::InvalidArgumentError("is not IP:PORT");
    ++hits;
    return absl::OkStatus();
  });
  const char* good[] = {"t", "--relay=1.2.3.4:5"};
  ASSERT_TRUE(f.Parse(2, good).ok());
  EXPECT_EQ(hits, 1);
  const char* bad[] = {"t", "--relay", "x"};
  auto r = f.Parse(3, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--relay: is not IP:PORT");
}

TEST(ParseForMainTest, ExitCodes) {
  Values v;
  FlagSet f = Make(v);
  const char* help[] = {"t", "--help"};
  EXPECT_EQ(ParseForMain(f, 2, help), 0);
  Values w;
  FlagSet g = Make(w);
  const char* bad[] = {"t", "--bogus"};
  EXPECT_EQ(ParseForMain(g, 2, bad), 2);
  Values x;
  FlagSet h = Make(x);
  const char* stray[] = {"t", "stray"};
  EXPECT_EQ(ParseForMain(h, 2, stray), 2);
  Values y;
  FlagSet k = Make(y);
  const char* ok[] = {"t", "--node=a"};
  EXPECT_EQ(ParseForMain(k, 2, ok), std::nullopt);
}

}  // namespace
}  // namespace weft::flags
