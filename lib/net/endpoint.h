// An IP address and a UDP/TCP port.
#ifndef WEFT_LIB_NET_ENDPOINT_H_
#define WEFT_LIB_NET_ENDPOINT_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/net/ip_address.h"

namespace weft::net {

struct Endpoint {
  IpAddress ip;
  uint16_t port = 0;

  // Parses "192.0.2.1:51820" and "[2001:db8::1]:51820". InvalidArgument otherwise.
  static absl::StatusOr<Endpoint> Parse(absl::string_view text);
  std::string ToString() const;  // the same forms

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// IPv4 socket addresses (for sendto/recvfrom and the batch calls); `e` must be IPv4.
sockaddr_in ToSockaddrV4(const Endpoint& e);
Endpoint FromSockaddrV4(const sockaddr_in& a);
// Either family's socket address, in `out`; returns its length (sockaddr_in's or
// sockaddr_in6's).
socklen_t ToSockaddr(const Endpoint& e, sockaddr_storage* out);
// The endpoint in `len` bytes of a socket address (which need not be aligned): AF_INET or
// AF_INET6 with `len` covering it; else nullopt.
std::optional<Endpoint> FromSockaddr(const void* addr, size_t len);
// 127.0.0.1:port.
Endpoint LoopbackV4(uint16_t port);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_ENDPOINT_H_
