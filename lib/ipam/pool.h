// The pod-address pool of one network on one node: pure state, no I/O.
//
// Addresses come from the node's pod CIDRs (one per family). Each allocation belongs to
// one attachment (container ID, interface name), so ADD is idempotent per attachment
// and DEL/GC release by attachment. Allocation is round-robin from the last address
// handed out, so a released address is not reused at once.
#ifndef WEFT_LIB_IPAM_POOL_H_
#define WEFT_LIB_IPAM_POOL_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/ip_address.h"

namespace weft::ipam {

struct Attachment {
  std::string container_id;
  std::string ifname;
  friend auto operator<=>(const Attachment&, const Attachment&) = default;
};

struct Allocation {
  net::IpAddress ip;
  Attachment owner;
  std::string pod_namespace;  // from CNI_ARGS K8S_POD_NAMESPACE, may be empty
  std::string pod_name;       // from CNI_ARGS K8S_POD_NAME, may be empty
};

class Pool {
 public:
  // Parses the text form written by Serialize(): one record a line, "last <ip>" and
  // "alloc <ip> <container id> <ifname> <pod namespace|-> <pod name|->". The four text
  // fields are escaped (every byte but letters, digits, '.', '_' and '-' as %XX; an empty
  // one is "-"), so whatever CNI_ARGS carried (spaces, newlines, any bytes) is one field.
  // An empty text is an empty pool. DataLoss on a corrupt store, naming the line.
  static absl::StatusOr<Pool> Parse(absl::string_view text);
  // A store Parse refused, recovered: every record whose address can be read is kept
  // (the owner as well as it can be read), so no address in use is handed out again;
  // lines with no address are dropped and counted in `*dropped`.
  static Pool Recover(absl::string_view text, int* dropped);
  std::string Serialize() const;

  // The address of `owner` in `range`'s family, if it has one.
  std::optional<Allocation> Find(const Attachment& owner, net::Family family) const;
  std::vector<Allocation> FindAll(const Attachment& owner) const;

  // Gives `owner` an address from `range`, or the one it already has (idempotent).
  // The first two addresses of the range (network, node) and, for IPv4, the last
  // (broadcast) are never handed out. ResourceExhausted when the range is full.
  absl::StatusOr<Allocation> Allocate(const net::IpPrefix& range, const Attachment& owner,
                                      absl::string_view pod_namespace, absl::string_view pod_name);

  // Releases every address of `owner`; returns how many.
  int Release(const Attachment& owner);
  // Releases every address whose owner is not in `valid`; returns them.
  std::vector<Allocation> ReleaseAllExcept(const std::set<Attachment>& valid);

  const std::map<net::IpAddress, Allocation>& allocations() const { return allocations_; }

 private:
  std::map<net::IpAddress, Allocation> allocations_;
  std::map<net::Family, net::IpAddress> last_;
};

// Whether `ip` may be handed out from `range` (see Allocate).
bool IsAssignable(const net::IpPrefix& range, const net::IpAddress& ip);

}  // namespace weft::ipam

#endif  // WEFT_LIB_IPAM_POOL_H_
