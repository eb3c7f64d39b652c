// An RAII rtnetlink socket (libmnl) and the one Transact() every rtnl_* call goes through.
#ifndef WEFT_LIB_NET_NL_SOCKET_H_
#define WEFT_LIB_NET_NL_SOCKET_H_

#include <linux/netlink.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct mnl_socket;

namespace weft::net {

// A netlink request under construction: header, family header, attributes. Built apart
// from sending so builders can be unit-tested as bytes.
class NlRequest {
 public:
  // Starts a message of `type` with `flags` (NLM_F_REQUEST is always added).
  NlRequest(uint16_t type, uint16_t flags);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const nlmsghdr* header() const { return reinterpret_cast<const nlmsghdr*>(buf_.data()); }
  // Appends a zeroed family header (ifinfomsg, rtmsg, ...) and returns it.
  template <typename T>
  T* PutExtraHeader();
  size_t size() const { return header()->nlmsg_len; }
  size_t capacity() const { return buf_.size(); }

 private:
  void* PutExtraHeaderRaw(size_t size);
  std::vector<uint64_t> buf_;  // 8-byte aligned storage
};

template <typename T>
T* NlRequest::PutExtraHeader() {
  return static_cast<T*>(PutExtraHeaderRaw(sizeof(T)));
}

// Called once per data message of a reply (not for ACK/DONE/ERROR).
using NlMessageCallback = absl::FunctionRef<absl::Status(const nlmsghdr*)>;

class NlSocket {
 public:
  // Opens and binds a netlink socket of `bus` (NETLINK_ROUTE, NETLINK_GENERIC, ...) in
  // the calling thread's network namespace.
  static absl::StatusOr<NlSocket> Open(int bus = NETLINK_ROUTE);
  // A socket that receives the multicast `groups` (RTMGRP_* bits) of NETLINK_ROUTE, for
  // watching changes; read it with DrainNotifications.
  static absl::StatusOr<NlSocket> OpenSubscribed(unsigned groups);

  int fd() const;
  // Reads every notification queued, without blocking; returns how many. An overrun
  // (ENOBUFS) counts as one: the caller should treat it as "something changed".
  int DrainNotifications();

  NlSocket(NlSocket&& other) noexcept;
  NlSocket& operator=(NlSocket&& other) noexcept;
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  ~NlSocket();

  // Sends `req` (mutations get NLM_F_ACK) and reads the reply to the end: the ACK, or
  // NLMSG_DONE for dumps. A kernel error comes back as the errno's status, with the
  // kernel's extended-ACK message when it sent one. A dump interrupted by a concurrent
  // change (NLM_F_DUMP_INTR) is retried from scratch up to 5 times, as the CNI plugins'
  // netlinksafe does: callers see only complete, consistent dumps, never partial ones.
  absl::Status Transact(NlRequest& req, NlMessageCallback on_message);
  absl::Status Transact(NlRequest& req);

 private:
  explicit NlSocket(mnl_socket* sock);
  absl::Status TransactOnce(NlRequest& req, NlMessageCallback on_message, bool* interrupted);

  mnl_socket* sock_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::vector<uint64_t> rx_;
};

}  // namespace weft::net

#endif  // WEFT_LIB_NET_NL_SOCKET_H_
