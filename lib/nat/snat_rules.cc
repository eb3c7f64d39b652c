#include "lib/nat/snat_rules.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace weft::nat {
namespace {

using nlohmann::json;

bool HasFlag(const json& flags, absl::string_view want) {
  if (flags.is_string()) return flags.get<std::string>() == want;
  if (flags.is_array()) {
    for (const auto& f : flags) {
      if (f.is_string() && f.get<std::string>() == want) return true;
    }
  }
  return false;
}

std::optional<net::IpPrefix> PrefixOf(const json& right) {
  if (right.is_string()) {
    if (auto p = net::IpPrefix::Parse(right.get<std::string>()); p.ok()) return *p;
    if (auto a = net::IpAddress::Parse(right.get<std::string>()); a.ok()) return net::IpPrefix{*a, a->bit_length()};
  } else if (right.is_object() && right.contains("prefix")) {
    const json& p = right["prefix"];
    if (p.contains("addr") && p["addr"].is_string() && p.contains("len") && p["len"].is_number_integer()) {
      if (auto a = net::IpAddress::Parse(p["addr"].get<std::string>()); a.ok()) return net::IpPrefix{*a, p["len"].get<int>()};
    }
  }
  return std::nullopt;
}

// One nftables match expression, applied to `r` when it restricts what we track.
void ApplyNftMatch(const json& m, SnatRule& r) {
  if (m.value("op", "==") != "==") return;  // "!=" and friends: may match
  const json left = m.value("left", json::object());
  const json right = m.value("right", json());
  if (left.contains("payload")) {
    const json& p = left["payload"];
    const std::string proto = p.value("protocol", ""), field = p.value("field", "");
    if ((proto == "udp" || proto == "tcp") && field == "sport" && right.is_number_integer()) {
      r.protocol = proto;
      r.source_port = static_cast<uint16_t>(right.get<int>());
    } else if ((proto == "udp" || proto == "tcp") && !r.protocol) {
      r.protocol = proto;  // any match on a transport header implies the protocol
    } else if ((proto == "ip" || proto == "ip6") && field == "saddr") {
      if (auto pre = PrefixOf(right)) r.source_prefixes.push_back(*pre);
    }
  } else if (left.contains("meta") && left["meta"].value("key", "") == "l4proto" && right.is_string()) {
    r.protocol = right.get<std::string>();
  }
}

// A match as nft prints it: "oifname eth0", "ip saddr 10.0.0.0/8", "udp sport 51820".
std::string NftMatchText(const json& m) {
  auto side = [](const json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();
    if (v.is_object() && v.contains("meta")) return v["meta"].value("key", "?");
    if (v.is_object() && v.contains("payload")) {
      return absl::StrCat(v["payload"].value("protocol", "?"), " ", v["payload"].value("field", "?"));
    }
    if (v.is_object() && v.contains("prefix")) {
      return absl::StrCat(v["prefix"].value("addr", "?"), "/", v["prefix"].value("len", 0));
    }
    return v.dump();
  };
  const std::string op = m.value("op", "==");
  return absl::StrCat(side(m.value("left", json())), op == "==" ? " " : " " + op + " ", side(m.value("right", json())));
}

}  // namespace

std::vector<SnatRule> ParseNftRuleset(absl::string_view text) {
  std::vector<SnatRule> out;
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("nftables") || !j["nftables"].is_array()) return out;
  for (const json& item : j["nftables"]) {
    if (!item.is_object() || !item.contains("rule") || !item["rule"].is_object()) continue;
    const json& rule = item["rule"];
    if (!rule.contains("expr") || !rule["expr"].is_array()) continue;
    SnatRule r;
    r.source = "nftables";
    r.location = absl::StrCat("table ", rule.value("family", "?"), " ", rule.value("table", "?"), " chain ",
                              rule.value("chain", "?"));
    bool nat = false;
    std::vector<std::string> words;
    for (const json& e : rule["expr"]) {
      if (!e.is_object()) continue;
      if (e.contains("match") && e["match"].is_object()) {
        ApplyNftMatch(e["match"], r);
        words.push_back(NftMatchText(e["match"]));
      }
      for (const char* action : {"masquerade", "snat"}) {
        if (!e.contains(action)) continue;
        nat = true;
        const json& a = e[action];
        const json flags = a.is_object() ? a.value("flags", json()) : json();
        r.randomizes = HasFlag(flags, "random") || HasFlag(flags, "fully-random");
        std::vector<std::string> fl;
        if (flags.is_string()) fl.push_back(flags.get<std::string>());
        if (flags.is_array()) {
          for (const auto& f : flags) {
            if (f.is_string()) fl.push_back(f.get<std::string>());
          }
        }
        words.push_back(fl.empty() ? std::string(action) : absl::StrCat(action, " ", absl::StrJoin(fl, ",")));
      }
    }
    if (!nat) continue;
    r.text = absl::StrJoin(words, " ");
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SnatRule> ParseIptablesSave(absl::string_view text, absl::string_view source) {
  std::vector<SnatRule> out;
  std::string table;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "*")) {
      table = std::string(line.substr(1));
      continue;
    }
    if (table != "nat" || !absl::StartsWith(line, "-A ")) continue;
    std::vector<std::string> t = absl::StrSplit(line, ' ', absl::SkipEmpty());
    SnatRule r;
    r.source = std::string(source);
    r.location = absl::StrCat("ip nat ", t.size() > 1 ? t[1] : "?");
    r.text = std::string(line);
    std::string target;
    bool negate = false;
    for (size_t i = 2; i < t.size(); ++i) {
      const std::string& w = t[i];
      const std::string next = i + 1 < t.size() ? t[i + 1] : "";
      if (w == "!") {
        negate = true;
        continue;
      }
      if ((w == "-s" || w == "--source") && !negate) {
        if (auto p = net::IpPrefix::Parse(next); p.ok()) r.source_prefixes.push_back(*p);
        else if (auto a = net::IpAddress::Parse(next); a.ok()) r.source_prefixes.push_back({*a, a->bit_length()});
      } else if ((w == "-p" || w == "--protocol") && !negate) {
        r.protocol = next;
      } else if ((w == "--sport" || w == "--source-port") && !negate) {
        int port = 0;
        if (absl::SimpleAtoi(next, &port) && port > 0 && port < 65536) r.source_port = static_cast<uint16_t>(port);
      } else if (w == "-j" || w == "--jump") {
        target = next;
      } else if (w == "--random" || w == "--random-fully") {
        r.randomizes = true;
      }
      negate = false;
    }
    if (target != "MASQUERADE" && target != "SNAT") continue;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SnatRule> RandomizingRulesFor(const std::vector<SnatRule>& rules, uint16_t port,
                                          const std::vector<net::IpAddress>& node_ips) {
  std::vector<SnatRule> out;
  for (const SnatRule& r : rules) {
    if (!r.randomizes) continue;
    if (r.protocol && *r.protocol != "udp" && *r.protocol != "17") continue;
    if (r.source_port && *r.source_port != port) continue;
    if (!r.source_prefixes.empty()) {
      bool any = false;
      for (const auto& p : r.source_prefixes) {
        for (const auto& ip : node_ips) any |= p.Contains(ip);
      }
      if (!any) continue;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace weft::nat
