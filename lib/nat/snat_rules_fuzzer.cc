// libFuzzer target: the node's own NAT rules as the agent reads them (`nft -j list
// ruleset`, `iptables-save`): written by other software on the node (kube-proxy, the
// AWS VPC CNI, an admin), so any text. No crash, no exception escaping.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/nat/snat_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)weft::nat::ParseNftRuleset(text);
  (void)weft::nat::ParseIptablesSave(text, "iptables-nft");
  return 0;
}
