#include "controller/pod_cidr_allocator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weft::controller {

absl::StatusOr<PodCidrAllocator> PodCidrAllocator::Create(const net::IpPrefix& cluster, int node_prefix) {
  if (node_prefix <= cluster.length || node_prefix > cluster.address.bit_length() - 2) {
    return absl::InvalidArgumentError(absl::StrCat("a /", node_prefix, " per node does not fit ", cluster.ToString()));
  }
  return PodCidrAllocator(net::IpPrefix{cluster.First(), cluster.length}, node_prefix);
}

bool PodCidrAllocator::Taken(const net::IpPrefix& p) const {
  for (const auto& [node, q] : by_node_) {
    if (q == p) return true;
  }
  return false;
}

absl::StatusOr<net::IpPrefix> PodCidrAllocator::Assign(const std::string& node, const std::vector<std::string>& requested,
                                                       bool or_fresh) {
  if (auto it = by_node_.find(node); it != by_node_.end()) return it->second;
  for (const std::string& r : requested) {
    auto p = net::IpPrefix::ParseNetwork(r);
    if (p.ok() && p->length == node_prefix_ && p->family() == cluster_.family() && cluster_.Contains(p->address) &&
        !Taken(*p)) {
      by_node_[node] = *p;
      return *p;
    }
  }
  if (!or_fresh) return absl::NotFoundError(absl::StrCat("none of ", node, "'s blocks fits ", cluster_.ToString()));
  const int host_bits = cluster_.address.bit_length() - node_prefix_;
  const int block_bits = node_prefix_ - cluster_.length;
  // Bounded: at most 2^20 blocks are examined (a /16 of /24s has 256).
  const uint64_t blocks = block_bits >= 20 ? (uint64_t{1} << 20) : (uint64_t{1} << block_bits);
  net::IpPrefix p{cluster_.First(), node_prefix_};
  for (uint64_t i = 0; i < blocks; ++i, p.address = p.address.PlusPowerOfTwo(host_bits)) {
    if (!Taken(p)) {
      by_node_[node] = p;
      return p;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat("no free /", node_prefix_, " left in ", cluster_.ToString()));
}

void PodCidrAllocator::Release(const std::string& node) { by_node_.erase(node); }

void RestoreBlocks(std::vector<PodCidrAllocator>& pods, const std::string& node, absl::string_view stored) {
  std::vector<std::string> had;
  for (absl::string_view c : absl::StrSplit(stored, ',', absl::SkipEmpty())) {
    if (had.size() == 8) break;  // bounded: a block per family is all there ever is
    had.emplace_back(c);
  }
  // Only the blocks it had: a stored node never takes a fresh one here.
  for (auto& p : pods) (void)p.Assign(node, had, /*or_fresh=*/false);
}

}  // namespace weft::controller
