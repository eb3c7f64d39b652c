#include "lib/wireguard/uapi.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"

namespace weft::wireguard {
namespace {

// A reply larger than this is refused rather than buffered without bound (1,000 peers
// with a few allowed IPs each take ~300 KiB).
constexpr size_t kMaxReply = 64 << 20;
constexpr int kIoTimeoutMs = 10000;

absl::Status Malformed(absl::string_view line) {
  return absl::InvalidArgumentError(absl::StrCat("UAPI: malformed line \"", line, "\""));
}

}  // namespace

std::string EncodeUapiSet(const DeviceConfig& c) {
  std::string out = "set=1\n";
  if (c.private_key) absl::StrAppend(&out, "private_key=", c.private_key->ToHex(), "\n");
  if (c.listen_port) absl::StrAppend(&out, "listen_port=", *c.listen_port, "\n");
  if (c.fwmark) absl::StrAppend(&out, "fwmark=", *c.fwmark, "\n");
  if (c.replace_peers) out += "replace_peers=true\n";
  for (const PeerConfig& p : c.peers) {
    absl::StrAppend(&out, "public_key=", p.public_key.ToHex(), "\n");
    if (p.remove) {
      out += "remove=true\n";
      continue;
    }
    if (p.preshared_key) absl::StrAppend(&out, "preshared_key=", p.preshared_key->ToHex(), "\n");
    if (p.endpoint) absl::StrAppend(&out, "endpoint=", p.endpoint->ToString(), "\n");
    if (p.persistent_keepalive) {
      absl::StrAppend(&out, "persistent_keepalive_interval=", *p.persistent_keepalive, "\n");
    }
    if (p.replace_allowed_ips) out += "replace_allowed_ips=true\n";
    for (const auto& ip : p.allowed_ips) absl::StrAppend(&out, "allowed_ip=", ip.ToString(), "\n");
  }
  out += "\n";
  return out;
}

absl::StatusOr<DeviceStatus> ParseUapiGet(absl::string_view text) {
  DeviceStatus d;
  PeerStatus* peer = nullptr;
  int64_t hs_sec = 0, hs_nsec = 0;
  auto finish_peer = [&] {
    if (peer != nullptr && (hs_sec != 0 || hs_nsec != 0)) {
      peer->last_handshake = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::seconds(hs_sec) + std::chrono::nanoseconds(hs_nsec)));
    }
    hs_sec = hs_nsec = 0;
  };
  bool saw_errno = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (line.find('=') == absl::string_view::npos) return Malformed(line);
    const absl::string_view k = kv.first, v = kv.second;
    uint64_t n = 0;
    if (k == "errno") {
      if (!absl::SimpleAtoi(v, &n)) return Malformed(line);
      if (n != 0) return absl::UnknownError(absl::StrCat("UAPI get: errno=", n));
      saw_errno = true;
      break;
    } else if (k == "private_key") {
      ASSIGN_OR_RETURN(d.private_key, Key::FromHex(v));
      ASSIGN_OR_RETURN(d.public_key, Key::PublicFrom(d.private_key));
    } else if (k == "listen_port") {
      if (!absl::SimpleAtoi(v, &n) || n > 65535) return Malformed(line);
      d.listen_port = static_cast<uint16_t>(n);
    } else if (k == "fwmark") {
      if (!absl::SimpleAtoi(v, &n) || n > UINT32_MAX) return Malformed(line);
      d.fwmark = static_cast<uint32_t>(n);
    } else if (k == "public_key") {
      finish_peer();
      ASSIGN_OR_RETURN(Key key, Key::FromHex(v));
      d.peers.push_back(PeerStatus{.public_key = key});
      peer = &d.peers.back();
    } else if (peer == nullptr) {
      continue;  // device keys we do not use
    } else if (k == "endpoint") {
      ASSIGN_OR_RETURN(peer->endpoint, net::Endpoint::Parse(v));
    } else if (k == "allowed_ip") {
      ASSIGN_OR_RETURN(net::IpPrefix p, net::IpPrefix::Parse(v));
      peer->allowed_ips.push_back(p);
    } else if (k == "persistent_keepalive_interval") {
      if (!absl::SimpleAtoi(v, &n) || n > 65535) return Malformed(line);
      peer->persistent_keepalive = static_cast<int>(n);
    } else if (k == "rx_bytes") {
      if (!absl::SimpleAtoi(v, &peer->rx_bytes)) return Malformed(line);
    } else if (k == "tx_bytes") {
      if (!absl::SimpleAtoi(v, &peer->tx_bytes)) return Malformed(line);
    } else if (k == "last_handshake_time_sec") {
      if (!absl::SimpleAtoi(v, &hs_sec)) return Malformed(line);
    } else if (k == "last_handshake_time_nsec") {
      if (!absl::SimpleAtoi(v, &hs_nsec)) return Malformed(line);
    }
  }
  finish_peer();
  if (!saw_errno) return absl::InvalidArgumentError("UAPI get: reply ended without errno");
  return d;
}

absl::Status ParseUapiSetReply(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "errno=")) {
      int n = 0;
      if (!absl::SimpleAtoi(line, &n)) return Malformed(line);
      if (n != 0) return absl::InvalidArgumentError(absl::StrCat("UAPI set refused: errno=", n, " (", strerror(n), ")"));
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("UAPI set: reply without errno");
}

UapiDevice::UapiDevice(std::string name, std::string socket_dir)
    : name_(std::move(name)), socket_path_(absl::StrCat(socket_dir, "/", name_, ".sock")) {}

absl::StatusOr<std::string> UapiDevice::Exchange(absl::string_view request) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "UAPI socket");
  absl::Cleanup closer = [fd] { close(fd); };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("UAPI socket path too long");
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("connect ", socket_path_));
  }
  for (size_t off = 0; off < request.size();) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", socket_path_));
    off += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.size() < 2 || reply.compare(reply.size() - 2, 2, "\n\n") != 0) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, kIoTimeoutMs);
    if (r == 0) return absl::DeadlineExceededError(absl::StrCat("no reply from ", socket_path_));
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", socket_path_));
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > kMaxReply) return absl::ResourceExhaustedError("UAPI reply too large");
  }
  return reply;
}

absl::Status UapiDevice::Set(const DeviceConfig& config) {
  ASSIGN_OR_RETURN(std::string reply, Exchange(EncodeUapiSet(config)));
  return Annotate(ParseUapiSetReply(reply), absl::StrCat("wireguard ", name_));
}

absl::StatusOr<DeviceStatus> UapiDevice::Get() {
  ASSIGN_OR_RETURN(std::string reply, Exchange("get=1\n\n"));
  return ParseUapiGet(reply);
}

}  // namespace weft::wireguard
