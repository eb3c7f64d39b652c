#include "lib/http/http_listen.h"

#include <httplib.h>

#include "gtest/gtest.h"
#include "lib/testing/free_port.h"

namespace weft::http {
namespace {

TEST(BindTest, AddrPortOrAClearError) {
  httplib::Server a;
  const int port = testing::FreeLoopbackPort(SOCK_STREAM);
  ASSERT_TRUE(Bind(a, "127.0.0.1:" + std::to_string(port)).ok());
  httplib::Server b;
  EXPECT_TRUE(absl::IsUnavailable(Bind(b, "192.0.2.1:" + std::to_string(port))));  // not an address of this host
  httplib::Server c;
  EXPECT_TRUE(absl::IsInvalidArgument(Bind(c, "127.0.0.1")));
  EXPECT_TRUE(absl::IsInvalidArgument(Bind(c, "127.0.0.1:http")));
}

}  // namespace
}  // namespace weft::http
