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

TEST(IsLoopbackPeerTest, OnlyThisHost) {
  for (const char* a : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) EXPECT_TRUE(IsLoopbackPeer(a)) << a;
  for (const char* a : {"", "10.0.0.1", "::ffff:10.0.0.1", "1.127.0.0", "fe80::1", "::2", "128.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackPeer(a)) << a;
  }
}

}  // namespace
}  // namespace weft::http
