// Standalone mode's pod-CIDR registry: one block per node from the cluster CIDR (pure).
#ifndef WEFT_CONTROLLER_POD_CIDR_ALLOCATOR_H_
#define WEFT_CONTROLLER_POD_CIDR_ALLOCATOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/net/ip_address.h"

namespace weft::controller {

class PodCidrAllocator {
 public:
  // Blocks of /`node_prefix` (e.g. /24) out of `cluster` (e.g. 10.244.0.0/16).
  // InvalidArgument if the block is not smaller than the cluster CIDR.
  static absl::StatusOr<PodCidrAllocator> Create(const net::IpPrefix& cluster, int node_prefix);

  // The node's block: the one it already has, else the one it asks for (its earlier
  // assignment, reported after a controller restart) if free and inside the cluster
  // CIDR, else the first free one (with `or_fresh`; else NotFound). ResourceExhausted
  // when none is left.
  absl::StatusOr<net::IpPrefix> Assign(const std::string& node, const std::vector<std::string>& requested,
                                       bool or_fresh = true);
  void Release(const std::string& node);
  const std::map<std::string, net::IpPrefix>& assignments() const { return by_node_; }
  const net::IpPrefix& cluster() const { return cluster_; }

 private:
  PodCidrAllocator(net::IpPrefix cluster, int node_prefix) : cluster_(cluster), node_prefix_(node_prefix) {}
  bool Taken(const net::IpPrefix& p) const;

  net::IpPrefix cluster_;
  int node_prefix_;
  std::map<std::string, net::IpPrefix> by_node_;
};

// A node's blocks from stored state ("10.244.1.0/24,fd00:10:244:1::/64", one per family):
// each allocator takes the one it can (its family, its cluster CIDR, its size, free);
// what does not parse or fit is ignored, and the node gets a fresh block at its next Hello.
void RestoreBlocks(std::vector<PodCidrAllocator>& pods, const std::string& node, absl::string_view stored);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_POD_CIDR_ALLOCATOR_H_
