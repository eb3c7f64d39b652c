// tcp_balancer: what a ClusterIP Service does to TCP, for tests. Each accepted connection
// goes to a backend chosen at random (kube-proxy's iptables mode), whether or not that
// replica is the one that serves; a backend that is down refuses the connection.
//
// The listening socket may live in another network namespace than the backends
// (--listen-netns): agents in the NAT lab reach controllers that run on this host's
// loopback, as pods reach a Service.
//
// --delay-ms holds every chunk that long before passing it on: a controller far away (a
// round trip of twice that, per exchange of a TLS handshake).
//
// usage: tcp_balancer --listen IP:PORT [--listen-netns PATH] [--delay-ms N] --backend IP:PORT [--backend ...]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lib/flags/flags.h"
#include "lib/net/endpoint.h"

namespace {

constexpr int kMaxConnections = 512;
std::atomic<int> g_live{0};
int g_delay_ms = 0;

// Copies both ways until either side closes; then closes both.
void Pipe(int a, int b) {
  char buf[65536];
  pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  for (;;) {
    if (poll(p, 2, -1) < 0) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        done = true;
        break;
      }
      if (g_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(g_delay_ms));
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(p[1 - i].fd, buf + off, static_cast<size_t>(n - off));
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
    if (done) break;
  }
  close(a);
  close(b);
  --g_live;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::string listen, listen_netns;
  std::vector<std::string> backends;
  weft::flags::FlagSet f("tcp_balancer",
                         "tcp_balancer --listen IP:PORT [--listen-netns PATH] [--delay-ms N] --backend IP:PORT ...");
  f.String("listen", &listen, "IP:PORT", "where clients connect")
      .String("listen-netns", &listen_netns, "PATH", "the network namespace to listen in")
      .Int("delay-ms", &g_delay_ms, 0, 10000, "hold each chunk this long, each way (latency)")
      .List("backend", &backends, "IP:PORT", "the replicas");
  if (auto code = weft::flags::ParseForMain(f, argc, argv)) return *code;
  auto l = weft::net::Endpoint::Parse(listen);
  if (!l.ok() || backends.empty()) return weft::flags::UsageError(f, "--listen and --backend are required");
  std::vector<sockaddr_in> to;
  for (const auto& b : backends) {
    auto e = weft::net::Endpoint::Parse(b);
    if (!e.ok()) return weft::flags::UsageError(f, "bad --backend " + b);
    to.push_back(weft::net::ToSockaddrV4(*e));
  }
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (!listen_netns.empty()) {
    int ns = open(listen_netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      std::perror("tcp_balancer: setns");
      return 1;
    }
    close(ns);
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in la = weft::net::ToSockaddrV4(*l);
  if (bind(ls, reinterpret_cast<sockaddr*>(&la), sizeof(la)) != 0 || ::listen(ls, 128) != 0) {
    std::perror("tcp_balancer: listen");
    return 1;
  }
  if (setns(home, CLONE_NEWNET) != 0) {  // backends are dialled from where we started
    std::perror("tcp_balancer: setns back");
    return 1;
  }
  std::fprintf(stderr, "tcp_balancer: %s -> %zu backends\n", listen.c_str(), to.size());
  std::mt19937 rng(std::random_device{}());
  for (;;) {
    int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (g_live >= kMaxConnections) {
      close(c);
      continue;
    }
    const sockaddr_in& b = to[rng() % to.size()];
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s, reinterpret_cast<const sockaddr*>(&b), sizeof(b)) != 0) {
      close(s);
      close(c);  // a replica that is down: the client sees its connection fail
      continue;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ++g_live;
    std::thread(Pipe, c, s).detach();
  }
}
