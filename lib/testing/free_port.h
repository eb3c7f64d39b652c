// A port on 127.0.0.1 that was free a moment ago (tests start servers on it).
#ifndef WEFT_LIB_TESTING_FREE_PORT_H_
#define WEFT_LIB_TESTING_FREE_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace weft::testing {

// Binds `fd` to 127.0.0.1 port `a->sin_port` (0: any) and reads back the port bound.
inline bool BindLoopback(int fd, sockaddr_in* a) {
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*a);
  return bind(fd, reinterpret_cast<sockaddr*>(a), sizeof(*a)) == 0 &&
         getsockname(fd, reinterpret_cast<sockaddr*>(a), &len) == 0;
}

// `type`: SOCK_DGRAM or SOCK_STREAM. 0 if none could be had.
inline int FreeLoopbackPort(int type) {
  const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  const bool ok = BindLoopback(fd, &a);
  close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

// A port on 127.0.0.1 free for UDP and for TCP at once (a relay listens on both): a
// free UDP port whose TCP twin is taken (another test's connection) is skipped. 0 if
// none could be had in a few tries.
inline int FreeLoopbackUdpTcpPort() {
  for (int attempt = 0; attempt < 32; ++attempt) {
    const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (udp < 0) return 0;
    sockaddr_in a{};
    if (!BindLoopback(udp, &a)) {
      close(udp);
      return 0;
    }
    const int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool both = tcp >= 0 && BindLoopback(tcp, &a);
    if (tcp >= 0) close(tcp);
    close(udp);
    if (both) return ntohs(a.sin_port);
  }
  return 0;
}

}  // namespace weft::testing

#endif  // WEFT_LIB_TESTING_FREE_PORT_H_
