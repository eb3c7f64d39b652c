// bench/relay: weft-relay against coturn, side by side in one run, on loopback.
//   1. STUN Binding: requests/s answered and latency p50/p99, a window of requests in
//      flight per client socket;
//   2. TURN: ChannelData of 1,200 bytes from a client through the relay to a peer:
//      packets/s delivered to the peer;
//   3. TURN over TCP: round trips of 200-byte ChannelData through the relay to an echo
//      peer and back, 4 in flight: p50/p99 (what TCP_NODELAY is for).
// Both servers get the same load from the same client (one thread, sendmmsg/recvmmsg);
// coturn runs with its defaults (a relay thread per CPU), weft-relay with its one loop.
//   build/bench/relay/relay_bench [--seconds 3]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/stun/stun_message.h"
#include "lib/testing/free_port.h"
#include "lib/turn/stream_framer.h"
#include "lib/turn/turn_credentials.h"
#include "lib/flags/flags.h"
#include <netinet/tcp.h>

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kSecret[] = "bench-secret-0123456789";

int UdpSocket() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  return fd;
}

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Servers run on CPU 1, the load generator on CPU 0: neither steals the other's core,
// which on a 2-core machine otherwise decides the result more than the servers do.
void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(1u, std::thread::hardware_concurrency()), &set);
  sched_setaffinity(0, sizeof(set), &set);
}

pid_t Spawn(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    PinTo(1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

void Stop(pid_t pid) {
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

struct StunResult {
  double rate = 0, p50_us = 0, p99_us = 0;
};

// `rate` and the median and 99th percentile of `lat` (microseconds).
StunResult Latencies(double rate, std::vector<double>& lat) {
  StunResult r;
  r.rate = rate;
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    r.p50_us = lat[lat.size() / 2];
    r.p99_us = lat[lat.size() * 99 / 100];
  }
  return r;
}

// Keeps `window` Binding requests in flight on each of `sockets` sockets for `seconds`.
StunResult BenchStun(int port, int seconds) {
  constexpr int kSockets = 4, kWindow = 32;
  std::vector<int> fds;
  for (int i = 0; i < kSockets; ++i) fds.push_back(UdpSocket());
  const sockaddr_in to = Loopback(port);
  std::map<uint64_t, Clock::time_point> sent;  // tx → send time
  std::vector<double> lat;
  uint64_t next = 1, answered = 0;
  auto send_one = [&](int fd) {
    weft::stun::TxId tx{};
    const uint64_t id = next++;
    std::memcpy(tx.data(), &id, sizeof(id));
    auto req = weft::stun::BuildBindingRequest(tx);
    sent[id] = Clock::now();
    sendto(fd, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  };
  for (int fd : fds) {
    for (int k = 0; k < kWindow; ++k) send_one(fd);
  }
  const auto start = Clock::now(), end = start + std::chrono::seconds(seconds);
  std::vector<pollfd> pfds;
  for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
  uint8_t buf[2048];
  while (Clock::now() < end) {
    if (poll(pfds.data(), pfds.size(), 50) <= 0) {
      // Lost requests: refill the window so the load does not stall.
      for (int fd : fds) send_one(fd);
      continue;
    }
    for (auto& p : pfds) {
      if (!(p.revents & POLLIN)) continue;
      for (int k = 0; k < 64; ++k) {
        ssize_t n = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 20) break;
        uint64_t id = 0;
        std::memcpy(&id, buf + 8, sizeof(id));
        auto it = sent.find(id);
        if (it == sent.end()) continue;
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - it->second).count());
        sent.erase(it);
        ++answered;
        send_one(p.fd);
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  for (int fd : fds) close(fd);
  return Latencies(answered / secs, lat);
}

// A TURN request, signed with REST credentials once the 401 gave the nonce.
std::vector<uint8_t> SignedRequest(uint16_t method, int attempt, const std::vector<std::pair<uint16_t, uint32_t>>& u32s,
                                   const weft::net::Endpoint* peer, const weft::turn::Credentials& c,
                                   const std::string& nonce) {
  weft::stun::TxId tx{};
  tx[0] = static_cast<uint8_t>(method);
  tx[1] = static_cast<uint8_t>(attempt);
  weft::stun::Builder b(method, weft::stun::Class::kRequest, tx);
  for (auto [t, v] : u32s) b.AddU32(t, v);
  if (peer != nullptr) b.AddXorAddress(weft::stun::kXorPeerAddress, *peer);
  if (!nonce.empty()) {
    b.AddString(weft::stun::kUsername, c.username).AddString(weft::stun::kRealm, "weft").AddString(weft::stun::kNonce, nonce);
    b.AddIntegrity(weft::stun::LongTermKey(c.username, "weft", c.password));
  }
  return b.Finish();
}

// A TURN request signed with REST credentials after the 401 that gives the nonce.
bool Turn(int fd, const sockaddr_in& server, uint16_t method, const std::vector<std::pair<uint16_t, uint32_t>>& u32s,
          const weft::net::Endpoint* peer, const weft::turn::Credentials& c, std::string* nonce,
          weft::net::Endpoint* relayed) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto req = SignedRequest(method, attempt, u32s, peer, c, *nonce);
    sendto(fd, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&server), sizeof(server));
    uint8_t buf[2048];
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) continue;
    auto m = weft::stun::Message::Parse(absl::Span<const uint8_t>(buf, n));
    if (!m.ok()) continue;
    if (m->message_class() == weft::stun::Class::kSuccess) {
      if (relayed != nullptr) {
        if (auto r = m->GetXorAddress(weft::stun::kXorRelayedAddress); r.ok()) *relayed = *r;
      }
      return true;
    }
    if (auto nn = m->GetString(weft::stun::kNonce); nn.ok()) *nonce = *nn;
  }
  return false;
}

// Allocates, binds a channel to a local peer socket, then sends ChannelData as fast as
// it can for `seconds`; returns packets/s the peer received.
double BenchTurn(int port, int seconds) {
  const sockaddr_in server = Loopback(port);
  int client = UdpSocket(), peer = UdpSocket();
  sockaddr_in pa{};
  socklen_t len = sizeof(pa);
  getsockname(peer, reinterpret_cast<sockaddr*>(&pa), &len);
  const weft::net::Endpoint peer_ep{*weft::net::IpAddress::Parse("127.0.0.1"), ntohs(pa.sin_port)};
  const auto creds = weft::turn::IssueCredentials(kSecret, "bench", time(nullptr) + 3600);
  std::string nonce;
  weft::net::Endpoint relayed;
  int fl = fcntl(client, F_GETFL);
  fcntl(client, F_SETFL, fl & ~O_NONBLOCK);
  if (!Turn(client, server, weft::stun::kAllocate, {{weft::stun::kRequestedTransport, 17u << 24}}, nullptr, creds, &nonce,
            &relayed) ||
      !Turn(client, server, weft::stun::kChannelBind, {{weft::stun::kChannelNumber, 0x4000u << 16}}, &peer_ep, creds,
            &nonce, nullptr)) {
    std::fprintf(stderr, "relay_bench: TURN setup failed on port %d\n", port);
    return 0;
  }
  fcntl(client, F_SETFL, fl | O_NONBLOCK);
  std::vector<uint8_t> frame(4 + 1200, 0xab);
  frame[0] = 0x40;
  frame[1] = 0x00;
  frame[2] = 1200 >> 8;
  frame[3] = 1200 & 0xff;
  std::atomic<bool> done{false};
  uint64_t received = 0;
  std::thread rx([&] {
    uint8_t buf[2048];
    while (!done) {
      pollfd p{peer, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) > 0) ++received;
    }
  });
  constexpr int kBatch = 32;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  for (int k = 0; k < kBatch; ++k) {
    iov[k] = {frame.data(), frame.size()};
    msgs[k] = {};
    msgs[k].msg_hdr.msg_name = const_cast<sockaddr_in*>(&server);
    msgs[k].msg_hdr.msg_namelen = sizeof(server);
    msgs[k].msg_hdr.msg_iov = &iov[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
  }
  const auto start = Clock::now(), end = start + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    if (sendmmsg(client, msgs, kBatch, 0) <= 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // what is still in flight
  done = true;
  rx.join();
  close(client);
  close(peer);
  return received / std::chrono::duration<double>(end - start).count();
}

// TURN over TCP: allocates on a TCP connection, binds a channel to an echo peer, then
// keeps 4 ChannelData messages of 200 bytes in flight for `seconds`; round-trip times.
StunResult BenchTcpRtt(int port, int seconds) {
  StunResult r;
  int peer = UdpSocket();
  sockaddr_in pa{};
  socklen_t len = sizeof(pa);
  getsockname(peer, reinterpret_cast<sockaddr*>(&pa), &len);
  const weft::net::Endpoint peer_ep{*weft::net::IpAddress::Parse("127.0.0.1"), ntohs(pa.sin_port)};
  std::atomic<bool> done{false};
  std::thread echo([&] {
    uint8_t buf[2048];
    while (!done) {
      pollfd p{peer, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_in from{};
      socklen_t fl = sizeof(from);
      ssize_t n;
      while ((n = recvfrom(peer, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl)) > 0) {
        sendto(peer, buf, n, 0, reinterpret_cast<sockaddr*>(&from), fl);
        fl = sizeof(from);
      }
    }
  });
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const sockaddr_in server = Loopback(port);
  weft::turn::StreamFramer framer;
  auto read_frame = [&](int timeout_ms) -> std::vector<uint8_t> {
    const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto f = framer.Next();
      if (!f.ok()) return {};
      if (!f->empty()) return std::vector<uint8_t>(f->begin(), f->end());
      const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) return {};
      uint8_t buf[4096];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return {};
      framer.Append(absl::Span<const uint8_t>(buf, n));
    }
  };
  const auto creds = weft::turn::IssueCredentials(kSecret, "bench-tcp", time(nullptr) + 3600);
  std::string nonce;
  auto request = [&](uint16_t method, const std::vector<std::pair<uint16_t, uint32_t>>& u32s, bool with_peer) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto req = SignedRequest(method, attempt, u32s, with_peer ? &peer_ep : nullptr, creds, nonce);
      send(fd, req.data(), req.size(), MSG_NOSIGNAL);
      auto answer = read_frame(1000);
      auto m = weft::stun::Message::Parse(answer);
      if (!m.ok()) return false;
      if (m->message_class() == weft::stun::Class::kSuccess) return true;
      if (auto nn = m->GetString(weft::stun::kNonce); nn.ok()) nonce = *nn;
    }
    return false;
  };
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0 ||
      !request(weft::stun::kAllocate, {{weft::stun::kRequestedTransport, 17u << 24}}, false) ||
      !request(weft::stun::kChannelBind, {{weft::stun::kChannelNumber, 0x4000u << 16}}, true)) {
    std::fprintf(stderr, "relay_bench: TURN over TCP setup failed on port %d\n", port);
  } else {
    std::vector<double> lat;
    std::map<uint64_t, Clock::time_point> sent;
    uint64_t next = 1;
    auto send_one = [&] {
      std::vector<uint8_t> frame(4 + 200, 0);
      frame[0] = 0x40;
      frame[2] = 0;
      frame[3] = 200;
      const uint64_t id = next++;
      std::memcpy(frame.data() + 4, &id, sizeof(id));
      sent[id] = Clock::now();
      send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    };
    for (int k = 0; k < 4; ++k) send_one();
    const auto start = Clock::now(), end = start + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
      auto f = read_frame(200);
      if (f.size() < 12 || (f[0] & 0xC0) != 0x40) {
        send_one();  // lost: keep 4 in flight
        continue;
      }
      uint64_t id = 0;
      std::memcpy(&id, f.data() + 4, sizeof(id));
      if (auto it = sent.find(id); it != sent.end()) {
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - it->second).count());
        sent.erase(it);
      }
      send_one();
    }
    r = Latencies(lat.size() / std::chrono::duration<double>(Clock::now() - start).count(), lat);
  }
  done = true;
  echo.join();
  close(fd);
  close(peer);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 3;
  weft::flags::FlagSet f("relay_bench", "relay_bench [--seconds N]   (weft-relay vs coturn on loopback)");
  f.Int("seconds", &seconds, 1, 3600, "per test");
  if (auto exit_code = weft::flags::ParseForMain(f, argc, argv)) return *exit_code;
  if (system("command -v turnserver >/dev/null") != 0) {
    std::fprintf(stderr, "relay_bench: coturn (turnserver) is not installed\n");
    return 1;
  }
  char dir[] = "/tmp/weft-relay-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  std::ofstream(std::string(dir) + "/secret") << kSecret << "\n";
  const int weft_port = weft::testing::FreeLoopbackUdpTcpPort();
  const int coturn_port = weft::testing::FreeLoopbackUdpTcpPort();
  pid_t weft = Spawn({WEFT_RELAY_BINARY, "--secret-file", std::string(dir) + "/secret", "--listen",
                      absl::StrCat("127.0.0.1:", weft_port), "--relay-ports", "41000-41999", "--http-listen", "",
                      "--allow-loopback-peers", "--allowed-peer-ip", "127.0.0.1"});
  pid_t coturn = Spawn({"turnserver", "-n", "--listening-ip", "127.0.0.1", "-p", std::to_string(coturn_port),
                        "--relay-ip", "127.0.0.1", "--min-port", "42000", "--max-port", "42999", "--use-auth-secret",
                        "--static-auth-secret", kSecret, "--realm", "weft", "--no-tls", "--no-dtls",
                        "--no-cli", "--pidfile", std::string(dir) + "/coturn.pid", "--log-file", "stdout",
                        "--userdb", std::string(dir) + "/turndb", "--no-software-attribute",
                        "--allow-loopback-peers"});
  PinTo(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  std::printf("bench/relay: loopback, %d s per test; servers pinned to CPU 1, the load (1 thread) to CPU 0;\n"
              "coturn with its defaults (its threads share CPU 1)\n", seconds);
  StunResult sw = BenchStun(weft_port, seconds), sc = BenchStun(coturn_port, seconds);
  std::printf("STUN Binding    weft-relay %9.0f req/s p50 %6.0f us p99 %6.0f us | coturn %9.0f req/s p50 %6.0f us p99 %6.0f us | rate x%.2f (target >= 1.5), p99 x%.2f (target <= 1)\n",
              sw.rate, sw.p50_us, sw.p99_us, sc.rate, sc.p50_us, sc.p99_us, sc.rate > 0 ? sw.rate / sc.rate : 0,
              sc.p99_us > 0 ? sw.p99_us / sc.p99_us : 0);
  const double tw = BenchTurn(weft_port, seconds), tc = BenchTurn(coturn_port, seconds);
  std::printf("TURN ChannelData 1200 B  weft-relay %9.0f pkt/s | coturn %9.0f pkt/s | x%.2f (target >= 1)\n", tw, tc,
              tc > 0 ? tw / tc : 0);
  const StunResult rw = BenchTcpRtt(weft_port, seconds), rc = BenchTcpRtt(coturn_port, seconds);
  std::printf("TURN over TCP RTT, 4 in flight  weft-relay p50 %6.0f us p99 %6.0f us | coturn p50 %6.0f us p99 %6.0f us | p99 x%.2f (target <= 2)\n",
              rw.p50_us, rw.p99_us, rc.p50_us, rc.p99_us, rc.p99_us > 0 ? rw.p99_us / rc.p99_us : 0);
  Stop(weft);
  Stop(coturn);
  std::string rm = absl::StrCat("rm -rf ", dir);
  (void)!system(rm.c_str());
  return 0;
}
