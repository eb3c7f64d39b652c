// libFuzzer target: the standalone controller's state file (--state-file), read at
// start. Bytes become a ControllerState; the snapshot is restored into an endpoint store
// and each node's stored pod CIDRs into dual-stack allocators, which must never hand one
// block to two nodes, nor a node more than one block per family, nor a block outside
// its cluster CIDR.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "controller/endpoint_store.h"
#include "controller/pod_cidr_allocator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::v1::ControllerState st;
  if (!st.ParseFromArray(data, static_cast<int>(size))) return 0;
  weft::controller::EndpointStore store;
  store.Restore(st.snapshot());
  (void)store.Snapshot();
  using weft::controller::PodCidrAllocator;
  std::vector<PodCidrAllocator> pods = {
      *PodCidrAllocator::Create(*weft::net::IpPrefix::Parse("10.244.0.0/16"), 24),
      *PodCidrAllocator::Create(*weft::net::IpPrefix::Parse("fd00:10:244::/56"), 64)};
  for (const auto& [node, cidrs] : st.pod_cidrs()) weft::controller::RestoreBlocks(pods, node, cidrs);
  for (const auto& p : pods) {
    std::set<std::string> seen;
    for (const auto& [node, block] : p.assignments()) {
      if (!p.cluster().Contains(block.address) || block.family() != p.cluster().family()) __builtin_trap();
      if (!seen.insert(block.ToString()).second) __builtin_trap();
    }
  }
  return 0;
}
