#include "lib/net/nl_socket.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/net/nl_attr.h"
#include "lib/status/errno_status.h"

namespace weft::net {
namespace {

constexpr size_t kRequestBytes = 16384;
// Dumps are sent in datagrams of up to 32 KiB when the reader's buffer allows it.
constexpr size_t kReceiveBytes = 65536;
constexpr int kDumpAttempts = 5;

const char* TypeName(uint16_t type) {
  switch (type) {
    case 16: return "RTM_NEWLINK";
    case 17: return "RTM_DELLINK";
    case 18: return "RTM_GETLINK";
    case 19: return "RTM_SETLINK";
    case 20: return "RTM_NEWADDR";
    case 21: return "RTM_DELADDR";
    case 22: return "RTM_GETADDR";
    case 24: return "RTM_NEWROUTE";
    case 25: return "RTM_DELROUTE";
    case 26: return "RTM_GETROUTE";
    case 28: return "RTM_NEWNEIGH";
    case 29: return "RTM_DELNEIGH";
    case 30: return "RTM_GETNEIGH";
    default: return "netlink request";
  }
}

// Reads the extended-ACK message (NLMSGERR_ATTR_MSG) the kernel attaches to an error.
std::string ExtAckMessage(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  std::string msg;
  ForEachAttr(nlh, offset, [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
      msg = mnl_attr_get_str(attr);
    }
  });
  return msg;
}

}  // namespace

NlRequest::NlRequest(uint16_t type, uint16_t flags) : buf_(kRequestBytes / sizeof(uint64_t), 0) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf_.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
}

void* NlRequest::PutExtraHeaderRaw(size_t size) {
  return mnl_nlmsg_put_extra_header(header(), size);
}

absl::StatusOr<NlSocket> NlSocket::Open(int bus) {
  mnl_socket* sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (sock == nullptr) return ErrnoStatus(errno, "open netlink socket");
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(sock);
    return ErrnoStatus(e, "bind netlink socket");
  }
  int on = 1;
  // Best effort: error strings from the kernel and no echo of our request in errors.
  mnl_socket_setsockopt(sock, NETLINK_EXT_ACK, &on, sizeof(on));
  mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &on, sizeof(on));
  return NlSocket(sock);
}

absl::StatusOr<NlSocket> NlSocket::OpenSubscribed(unsigned groups) {
  mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (sock == nullptr) return ErrnoStatus(errno, "open netlink socket");
  if (mnl_socket_bind(sock, groups, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(sock);
    return ErrnoStatus(e, "bind netlink socket to multicast groups");
  }
  return NlSocket(sock);
}

int NlSocket::fd() const { return mnl_socket_get_fd(sock_); }

int NlSocket::DrainNotifications() {
  int n = 0;
  char* buf = reinterpret_cast<char*>(rx_.data());
  for (;;) {
    ssize_t r = recv(fd(), buf, rx_.size() * sizeof(uint64_t), MSG_DONTWAIT);
    if (r > 0) {
      ++n;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == ENOBUFS) {
      ++n;
      continue;
    }
    return n;
  }
}

NlSocket::NlSocket(mnl_socket* sock)
    : sock_(sock), portid_(mnl_socket_get_portid(sock)), seq_(0),
      rx_(kReceiveBytes / sizeof(uint64_t)) {}

NlSocket::NlSocket(NlSocket&& other) noexcept
    : sock_(std::exchange(other.sock_, nullptr)), portid_(other.portid_), seq_(other.seq_),
      rx_(std::move(other.rx_)) {}

NlSocket& NlSocket::operator=(NlSocket&& other) noexcept {
  if (this != &other) {
    if (sock_ != nullptr) mnl_socket_close(sock_);
    sock_ = std::exchange(other.sock_, nullptr);
    portid_ = other.portid_;
    seq_ = other.seq_;
    rx_ = std::move(other.rx_);
  }
  return *this;
}

NlSocket::~NlSocket() {
  if (sock_ != nullptr) mnl_socket_close(sock_);
}

absl::Status NlSocket::Transact(NlRequest& req) {
  return Transact(req, [](const nlmsghdr*) { return absl::OkStatus(); });
}

absl::Status NlSocket::Transact(NlRequest& req, NlMessageCallback on_message) {
  const bool dump = (req.header()->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) req.header()->nlmsg_flags |= NLM_F_ACK;
  for (int attempt = 1;; ++attempt) {
    bool interrupted = false;
    absl::Status s = TransactOnce(req, on_message, &interrupted);
    if (!s.ok() || !interrupted) return s;
    if (attempt == kDumpAttempts) {
      return absl::UnavailableError(absl::StrCat(TypeName(req.header()->nlmsg_type),
                                                 ": dump interrupted ", kDumpAttempts,
                                                 " times by concurrent changes"));
    }
  }
}

absl::Status NlSocket::TransactOnce(NlRequest& req, NlMessageCallback on_message,
                                    bool* interrupted) {
  nlmsghdr* hdr = req.header();
  hdr->nlmsg_seq = ++seq_;
  const char* what = TypeName(hdr->nlmsg_type);
  if (mnl_socket_sendto(sock_, hdr, hdr->nlmsg_len) < 0) return ErrnoStatus(errno, what);

  absl::Status first_error;
  char* buf = reinterpret_cast<char*>(rx_.data());
  const size_t buf_len = rx_.size() * sizeof(uint64_t);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf, buf_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat(what, ": receive"));
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != seq_ || nlh->nlmsg_pid != portid_) continue;  // stale reply
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) *interrupted = true;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error == 0) return first_error;  // ACK
        std::string ext = ExtAckMessage(nlh);
        return ErrnoStatus(-err->error, ext.empty() ? std::string(what) : absl::StrCat(what, " (", ext, ")"));
      }
      if (nlh->nlmsg_type == NLMSG_DONE) {
        // Since Linux 4.x a dump may end with an error code in NLMSG_DONE's payload.
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
          int err = *static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
          if (err < 0) return ErrnoStatus(-err, what);
        }
        return first_error;
      }
      if (nlh->nlmsg_type < NLMSG_MIN_TYPE) continue;  // NOOP, OVERRUN
      if (first_error.ok() && !*interrupted) first_error = on_message(nlh);
    }
  }
}

}  // namespace weft::net
