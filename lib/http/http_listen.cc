#include "lib/http/http_listen.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weft::http {

absl::Status Bind(httplib::Server& server, const std::string& addr_port) {
  const size_t colon = addr_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr_port.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", addr_port, "\" is not ADDR:PORT"));
  }
  if (!server.bind_to_port(addr_port.substr(0, colon).c_str(), port)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", addr_port));
  }
  return absl::OkStatus();
}

bool IsLoopbackPeer(const std::string& remote_addr) {
  std::string a = remote_addr;
  if (a.rfind("::ffff:", 0) == 0) a = a.substr(7);
  return a == "::1" || a.rfind("127.", 0) == 0;
}

}  // namespace weft::http
