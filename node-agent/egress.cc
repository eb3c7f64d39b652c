#include "node-agent/egress.h"

#include <cstdio>
#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::agent {

std::string EgressRuleset(const std::vector<std::string>& pod_cidrs, const std::vector<std::string>& cluster_cidrs) {
  std::string out = "table ip weft {\n  chain egress {\n    type nat hook postrouting priority srcnat; policy accept;\n";
  for (const auto& p : pod_cidrs) {
    if (p.find(':') != std::string::npos) continue;  // IPv4 table
    absl::StrAppend(&out, "    ip saddr ", p);
    if (!cluster_cidrs.empty()) absl::StrAppend(&out, " ip daddr != { ", absl::StrJoin(cluster_cidrs, ", "), " }");
    out += " masquerade\n";
  }
  out += "  }\n}\n";
  return out;
}

absl::Status ApplyEgress(const std::string& ruleset) {
  // "add table" first so that "delete table" never fails; the three are one transaction.
  const std::string script = "add table ip weft\ndelete table ip weft\n" + ruleset;
  FILE* p = popen("nft -f - 2>&1", "w");
  if (p == nullptr) return absl::UnavailableError("cannot run nft");
  fwrite(script.data(), 1, script.size(), p);
  const int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return absl::InternalError("nft refused the egress ruleset");
  return absl::OkStatus();
}

}  // namespace weft::agent
