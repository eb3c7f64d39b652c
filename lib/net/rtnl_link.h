// Links over rtnetlink: veth pairs, lookup, up, delete, move to a netns, dump.
#ifndef WEFT_LIB_NET_RTNL_LINK_H_
#define WEFT_LIB_NET_RTNL_LINK_H_

#include <linux/netlink.h>

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"
#include "lib/net/nl_socket.h"

namespace weft::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  unsigned flags = 0;  // IFF_*
  int mtu = 0;
  MacAddress mac;
  std::string alias;  // IFLA_IFALIAS
  std::string kind;   // IFLA_INFO_KIND: "veth", "wireguard", ...
  bool up() const;
};

// A veth pair: `name` in the socket's netns, `peer_name` created directly in the netns
// of `peer_netns_fd` (or beside it when -1), so no interface is ever visible under a
// temporary name.
struct VethSpec {
  std::string name;
  std::optional<MacAddress> mac;
  std::string peer_name;
  std::optional<MacAddress> peer_mac;
  int peer_netns_fd = -1;
  int mtu = 0;  // 0: kernel default
};

// Request builders, exposed for byte-level tests.
void BuildNewVeth(NlRequest& req, const VethSpec& spec);
void BuildLinkByName(NlRequest& req, absl::string_view name);
// A new link of `kind` ("wireguard", "dummy"): IFLA_LINKINFO carries only the kind.
void BuildNewLink(NlRequest& req, absl::string_view name, absl::string_view kind);

// Parses one RTM_NEWLINK message. InvalidArgument if it is malformed.
absl::StatusOr<LinkInfo> ParseLink(const nlmsghdr* nlh);

// AlreadyExists if `spec.name` (or the peer name in its netns) exists.
absl::Status CreateVeth(NlSocket& nl, const VethSpec& spec);
// A link of `kind` with no kind-specific data (the kernel loads the kind's module if it
// can). AlreadyExists if `name` exists; Unimplemented if the kernel has no such kind.
absl::Status CreateLink(NlSocket& nl, absl::string_view name, absl::string_view kind);
// NotFound if there is no link of that name.
absl::StatusOr<LinkInfo> GetLink(NlSocket& nl, absl::string_view name);
absl::StatusOr<std::vector<LinkInfo>> ListLinks(NlSocket& nl);
// NotFound if there is no link of that name.
absl::Status DeleteLink(NlSocket& nl, absl::string_view name);
// Brings link `index` up; sets its alias too when `alias` is not empty (the kernel
// ignores IFLA_IFALIAS when a link is created, so it is set here).
absl::Status SetLinkUp(NlSocket& nl, int index, absl::string_view alias = "");
absl::Status SetLinkDown(NlSocket& nl, int index);
absl::Status SetLinkMtu(NlSocket& nl, int index, int mtu);
absl::StatusOr<LinkInfo> GetLinkByIndex(NlSocket& nl, int index);
// Moves link `index` into the netns of `netns_fd`, renaming it when `new_name` is set.
absl::Status MoveLinkToNetns(NlSocket& nl, int index, int netns_fd, absl::string_view new_name);

}  // namespace weft::net

#endif  // WEFT_LIB_NET_RTNL_LINK_H_
