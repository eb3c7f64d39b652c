// The daemons' HTTP endpoints (status, health, metrics): a cpp-httplib server bound to an
// "ADDR:PORT" flag value, served on a thread of its own.
#ifndef WEFT_LIB_HTTP_HTTP_LISTEN_H_
#define WEFT_LIB_HTTP_HTTP_LISTEN_H_

#include <string>

#include "absl/status/status.h"

namespace httplib {
class Server;
}

namespace weft::http {

// Binds `server` to `addr_port` ("0.0.0.0:9476"; the host part as cpp-httplib takes it).
// InvalidArgument when it is not HOST:PORT, Unavailable when the bind fails.
absl::Status Bind(httplib::Server& server, const std::string& addr_port);

// Whether a peer address (cpp-httplib's Request::remote_addr) is this host's loopback:
// 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. What only the node's admin may read or do is
// served to these (kubectl port-forward arrives from loopback too).
bool IsLoopbackPeer(const std::string& remote_addr);

}  // namespace weft::http

#endif  // WEFT_LIB_HTTP_HTTP_LISTEN_H_
