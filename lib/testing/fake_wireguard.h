// A UDP socket on 127.0.0.1 standing in for one node's WireGuard (relay tests: what a
// relay client delivers arrives here; what it sends goes to the client's proxy).
#ifndef WEFT_LIB_TESTING_FAKE_WIREGUARD_H_
#define WEFT_LIB_TESTING_FAKE_WIREGUARD_H_

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "lib/net/endpoint.h"

namespace weft::testing {

struct FakeWireGuard {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  uint16_t port = 0;
  FakeWireGuard() {
    sockaddr_in a = net::ToSockaddrV4(net::LoopbackV4(0));
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    timeval tv{0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~FakeWireGuard() { close(fd); }
  FakeWireGuard(const FakeWireGuard&) = delete;
  FakeWireGuard& operator=(const FakeWireGuard&) = delete;
  void SendTo(const net::Endpoint& to, const std::string& what) const {
    sockaddr_in a = net::ToSockaddrV4(to);
    sendto(fd, what.data(), what.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  // What arrived within 50 ms, or "".
  std::string Receive() const {
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, n) : "";
  }
  // Sends `what` to `proxy` until `to` gets it (a channel may still be binding): at most
  // 60 tries, 3 s.
  bool DeliveredTo(const net::Endpoint& proxy, const FakeWireGuard& to, const std::string& what) const {
    for (int i = 0; i < 60; ++i) {
      SendTo(proxy, what);
      if (to.Receive() == what) return true;
    }
    return false;
  }
};

}  // namespace weft::testing

#endif  // WEFT_LIB_TESTING_FAKE_WIREGUARD_H_
