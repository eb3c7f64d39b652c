#include "node-agent/snat_guard.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace weft::agent {
namespace {

constexpr char kTable[] = "weft-snat";

// Output of `cmd` (stderr discarded), or "" when it cannot run.
std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0 && out.size() < (8 << 20);) out.append(buf, n);
  pclose(p);
  return out;
}

absl::Status Nft(const std::string& script) {
  FILE* p = popen("nft -f - 2>&1", "w");
  if (p == nullptr) return absl::UnavailableError("cannot run nft");
  fwrite(script.data(), 1, script.size(), p);
  const int rc = pclose(p);
  if (rc != 0) return absl::InternalError(absl::StrCat("nft -f failed (status ", rc, ")"));
  return absl::OkStatus();
}

}  // namespace

std::vector<nat::SnatRule> ReadNodeSnatRules() {
  std::vector<nat::SnatRule> rules = nat::ParseNftRuleset(Run("nft -j list ruleset"));
  for (const char* tool : {"iptables-legacy-save", "iptables-nft-save"}) {
    auto more = nat::ParseIptablesSave(Run(absl::StrCat(tool, " -t nat")), tool);
    rules.insert(rules.end(), more.begin(), more.end());
  }
  return rules;
}

std::string DescribeRule(const nat::SnatRule& r) { return absl::StrCat(r.source, " ", r.location, ": ", r.text); }

std::string MitigationRuleset(uint16_t port) {
  return absl::StrCat("table ip ", kTable, "\n",  // create if missing, so the delete cannot fail
                      "delete table ip ", kTable, "\n",
                      "table ip ", kTable, " {\n",
                      "  chain postrouting {\n",
                      "    type nat hook postrouting priority srcnat - 10; policy accept;\n",
                      "    udp sport ", port, " masquerade comment \"weft: keep the WireGuard port\"\n",
                      "  }\n",
                      "}\n");
}

absl::Status InstallMitigation(uint16_t port) {
  if (absl::Status s = Nft(MitigationRuleset(port)); !s.ok()) return s;
  // Flows of the port that were already mapped keep their random port until conntrack
  // forgets them: make it forget them now (only the port's UDP flows).
  Run(absl::StrCat("conntrack -D -p udp --orig-port-src ", port));
  return absl::OkStatus();
}

absl::Status RemoveMitigation() {
  if (!MitigationInstalled()) return absl::OkStatus();
  return Nft(absl::StrCat("delete table ip ", kTable, "\n"));
}

bool MitigationInstalled() { return !Run(absl::StrCat("nft list table ip ", kTable)).empty(); }

}  // namespace weft::agent
