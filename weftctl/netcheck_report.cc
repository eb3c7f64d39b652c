#include "weftctl/netcheck_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace weft::weftctl {
namespace {

std::string Headline(const nat::Verdict& v) {
  if (v.udp_blocked) return "UDP blocked (no STUN target answered): direct paths impossible, relay over TCP";
  switch (v.mapping) {
    case nat::Mapping::kNone: return "no NAT (public address)";
    case nat::Mapping::kEndpointIndependent:
      return absl::StrCat("easy NAT (endpoint-independent mapping)", v.port_preserved ? ", port preserved" : "");
    case nat::Mapping::kEndpointDependent: return "hard NAT (endpoint-dependent mapping): peers cannot predict the port";
    case nat::Mapping::kUnknown: return "unknown (too few answers)";
  }
  return "?";
}

std::string Hairpin(const std::optional<bool>& h) { return h ? (*h ? "yes" : "no") : "not tested"; }

}  // namespace

std::string FormatNetcheck(uint16_t port, const nat::PortProbeReport& r, const std::string& family) {
  const nat::Verdict& v = r.verdict;
  std::string out = absl::StrCat("weft netcheck: WireGuard port ", port, family.empty() ? "" : " over ", family, "\n");
  absl::StrAppend(&out, "  verdict:    ", Headline(v), "\n");
  absl::StrAppend(&out, "  reflexive:  ", v.reflexive ? v.reflexive->ToString() : "(none: differs per peer or unknown)", "\n");
  absl::StrAppend(&out, "  filtering:  ", v.filtering == nat::Filtering::kUnknown ? "not tested (no RFC 5780 server answered)" : std::string(nat::FilteringName(v.filtering)), "\n");
  absl::StrAppend(&out, "  hairpin:    ", Hairpin(v.hairpin), "\n");
  absl::StrAppend(&out, "  targets:    ", v.answered, " of ", v.probed, " answered in ", r.took.count(), " ms\n");
  for (const nat::Probe& p : r.observations.probes) {
    if (p.mapped) {
      absl::StrAppend(&out, absl::StrFormat("    %-22s sees %-22s %7.1f ms\n", p.server.ToString(), p.mapped->ToString(),
                                            p.rtt ? p.rtt->count() / 1000.0 : 0.0));
    } else {
      absl::StrAppend(&out, absl::StrFormat("    %-22s (no answer)\n", p.server.ToString()));
    }
  }
  absl::StrAppend(&out, "  dropped:    ", r.counters.malformed, " malformed, ", r.counters.unknown_tx,
                  " unknown transaction, ", r.counters.wrong_source, " wrong source\n");
  absl::StrAppend(&out, "  why:        ", v.reason, "\n");
  return out;
}

nlohmann::json NetcheckJson(uint16_t port, const nat::PortProbeReport& r) {
  const nat::Verdict& v = r.verdict;
  nlohmann::json j = {{"port", port},
                      {"mapping", std::string(nat::MappingName(v.mapping))},
                      {"filtering", std::string(nat::FilteringName(v.filtering))},
                      {"udpBlocked", v.udp_blocked},
                      {"portPreserved", v.port_preserved},
                      {"answered", v.answered},
                      {"probed", v.probed},
                      {"tookMs", r.took.count()},
                      {"reason", v.reason},
                      {"dropped", {{"malformed", r.counters.malformed}, {"unknownTransaction", r.counters.unknown_tx},
                                   {"wrongSource", r.counters.wrong_source}}}};
  if (v.reflexive) j["reflexive"] = v.reflexive->ToString();
  if (v.hairpin) j["hairpin"] = *v.hairpin;
  j["targets"] = nlohmann::json::array();
  for (const nat::Probe& p : r.observations.probes) {
    nlohmann::json t = {{"server", p.server.ToString()}};
    if (p.mapped) t["mapped"] = p.mapped->ToString();
    if (p.rtt) t["rttMs"] = p.rtt->count() / 1000.0;
    j["targets"].push_back(std::move(t));
  }
  return j;
}

}  // namespace weft::weftctl
