#include "lib/config/cni_netconf.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/config/cni_error.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {

using nlohmann::json;

absl::Status Invalid(absl::string_view msg) {
  return CniError(kInvalidConfig, absl::StatusCode::kInvalidArgument, msg);
}

// Network names: an alphanumeric, then alphanumerics, '_', '.', '-' (CNI spec).
bool ValidNetworkName(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

absl::StatusOr<std::string> RequiredString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return Invalid(absl::StrCat("missing required field \"", key, "\""));
  if (!it->is_string()) return Invalid(absl::StrCat("field \"", key, "\" must be a string"));
  return it->get_ref<const std::string&>();
}

absl::StatusOr<std::vector<net::IpPrefix>> ParsePodCidrs(const json& j) {
  auto it = j.find("podCIDRs");
  if (it == j.end()) return Invalid("missing required field \"podCIDRs\" (the node's pod CIDRs)");
  if (!it->is_array() || it->empty() || it->size() > 2) {
    return Invalid("\"podCIDRs\" must be a list of one or two CIDRs (one per IP family)");
  }
  std::vector<net::IpPrefix> out;
  for (const json& e : *it) {
    if (!e.is_string()) return Invalid("\"podCIDRs\" entries must be strings");
    auto p = net::IpPrefix::ParseNetwork(e.get_ref<const std::string&>());
    if (!p.ok()) return Invalid(absl::StrCat("podCIDRs: ", p.status().message()));
    // Enough room for the reserved addresses and at least one pod.
    const int max_len = p->address.is_v4() ? 30 : 126;
    if (p->length > max_len || p->length < (p->address.is_v4() ? 8 : 48)) {
      return Invalid(absl::StrCat("podCIDRs: ", p->ToString(), " has an unusable prefix length (IPv4: /8../30, IPv6: /48../126)"));
    }
    for (const auto& prev : out) {
      if (prev.family() == p->family()) return Invalid("\"podCIDRs\" has two CIDRs of one IP family");
    }
    out.push_back(*p);
  }
  return out;
}

absl::StatusOr<std::vector<ipam::Attachment>> ParseAttachments(const json& list) {
  if (!list.is_array()) return Invalid("\"cni.dev/valid-attachments\" must be a list");
  std::vector<ipam::Attachment> out;
  for (const json& e : list) {
    auto cid = e.is_object() ? e.find("containerID") : e.end();
    auto ifn = e.is_object() ? e.find("ifname") : e.end();
    if (!e.is_object() || cid == e.end() || !cid->is_string() || ifn == e.end() || !ifn->is_string()) {
      return Invalid("valid-attachments entries need string \"containerID\" and \"ifname\"");
    }
    out.push_back({cid->get<std::string>(), ifn->get<std::string>()});
  }
  return out;
}

}  // namespace

const std::vector<std::string>& SupportedVersions() {
  static const auto* v = new std::vector<std::string>{"0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  return *v;
}

int CompareVersions(absl::string_view a, absl::string_view b) {
  std::vector<absl::string_view> pa = absl::StrSplit(a, '.'), pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < 3; ++i) {
    int x = 0, y = 0;
    if (i < pa.size()) (void)absl::SimpleAtoi(pa[i], &x);
    if (i < pb.size()) (void)absl::SimpleAtoi(pb[i], &y);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

absl::StatusOr<CniNetConf> ParseCniNetConf(absl::string_view json_text) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return CniError(kDecodeFailure, absl::StatusCode::kInvalidArgument,
                    "network configuration is not valid JSON");
  }
  if (!j.is_object()) {
    return CniError(kDecodeFailure, absl::StatusCode::kInvalidArgument,
                    "network configuration must be a JSON object");
  }
  CniNetConf c;
  {
    auto v = RequiredString(j, "cniVersion");
    if (!v.ok()) return v.status();
    c.cni_version = *v;
  }
  const auto& supported = SupportedVersions();
  if (std::find(supported.begin(), supported.end(), c.cni_version) == supported.end()) {
    return CniError(kIncompatibleVersion, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("cniVersion \"", c.cni_version, "\" is not supported (supported: ",
                                 absl::StrJoin(supported, ", "), ")"));
  }
  for (auto [field, out] : {std::pair{"name", &c.name}, std::pair{"type", &c.type}}) {
    auto v = RequiredString(j, field);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (!ValidNetworkName(c.name)) {
    return Invalid(absl::StrCat("network name \"", c.name, "\" is invalid (letters, digits, _ . -)"));
  }
  // GC and STATUS need no pod CIDRs only when the runtime strips them; we always want them.
  auto cidrs = ParsePodCidrs(j);
  if (!cidrs.ok()) return cidrs.status();
  c.pod_cidrs = *std::move(cidrs);

  if (auto it = j.find("mtu"); it != j.end()) {
    if (!it->is_number_integer()) return Invalid("\"mtu\" must be an integer");
    int64_t mtu = it->get<int64_t>();
    if (mtu < 1280 || mtu > 65535) return Invalid(absl::StrCat("\"mtu\" ", mtu, " is out of range (1280..65535)"));
    c.mtu = static_cast<int>(mtu);
  }
  if (auto it = j.find("dataDir"); it != j.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>()[0] != '/') {
      return Invalid("\"dataDir\" must be an absolute path");
    }
    c.data_dir = it->get<std::string>();
  }
  if (auto it = j.find("prevResult"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Invalid("\"prevResult\" must be an object");
    c.prev_result = *it;
  }
  // libcni sends both spellings (an early 1.1 draft used "cni.dev/attachments").
  for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
    if (auto it = j.find(key); it != j.end() && !c.valid_attachments) {
      auto a = ParseAttachments(*it);
      if (!a.ok()) return a.status();
      c.valid_attachments = *std::move(a);
    }
  }
  return c;
}

}  // namespace weft::cni
