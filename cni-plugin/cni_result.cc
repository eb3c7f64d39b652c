#include "cni-plugin/cni_result.h"

#include "absl/strings/str_cat.h"
#include "lib/config/cni_error.h"
#include "lib/config/cni_netconf.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

using nlohmann::json;

json EncodeResult(const CniResult& r, absl::string_view version,
                  const std::optional<json>& prev) {
  json out = prev && prev->is_object() ? *prev : json::object();
  out["cniVersion"] = version;
  const bool ip_versions = CompareVersions(version, "1.0.0") < 0;
  const bool mtus = CompareVersions(version, "1.1.0") >= 0;

  json& ifaces = out["interfaces"];
  if (!ifaces.is_array()) ifaces = json::array();
  const int offset = static_cast<int>(ifaces.size());
  for (const auto& i : r.interfaces) {
    json j = {{"name", i.name}, {"mac", i.mac.ToString()}};
    if (!i.sandbox.empty()) j["sandbox"] = i.sandbox;
    if (mtus && i.mtu > 0) j["mtu"] = i.mtu;
    ifaces.push_back(std::move(j));
  }
  json& ips = out["ips"];
  if (!ips.is_array()) ips = json::array();
  for (const auto& ip : r.ips) {
    json j = {{"address", ip.address.ToString()},
              {"gateway", ip.gateway.ToString()},
              {"interface", ip.interface + offset}};
    if (ip_versions) j["version"] = ip.address.address.is_v4() ? "4" : "6";
    ips.push_back(std::move(j));
  }
  json& routes = out["routes"];
  if (!routes.is_array()) routes = json::array();
  for (const auto& rt : r.routes) {
    json j = {{"dst", rt.dst.ToString()}};
    if (rt.gw) j["gw"] = rt.gw->ToString();
    routes.push_back(std::move(j));
  }
  if (!out.contains("dns")) out["dns"] = json::object();
  return out;
}

absl::StatusOr<std::vector<net::IpPrefix>> PodAddressesFromResult(const json& result,
                                                                  absl::string_view ifname) {
  auto bad = [](absl::string_view why) {
    return CniError(kInvalidConfig, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("prevResult: ", why));
  };
  auto ifaces = result.find("interfaces");
  auto ips = result.find("ips");
  if (ifaces == result.end() || !ifaces->is_array()) return bad("no \"interfaces\" list");
  if (ips == result.end() || !ips->is_array()) return bad("no \"ips\" list");
  std::vector<net::IpPrefix> out;
  for (const json& ip : *ips) {
    if (!ip.is_object()) return bad("an \"ips\" entry is not an object");
    auto idx = ip.find("interface");
    if (idx == ip.end() || !idx->is_number_integer()) continue;
    int64_t i = idx->get<int64_t>();
    if (i < 0 || i >= static_cast<int64_t>(ifaces->size())) return bad("\"interface\" out of range");
    const json& iface = (*ifaces)[static_cast<size_t>(i)];
    auto name = iface.is_object() ? iface.find("name") : iface.end();
    if (!iface.is_object() || name == iface.end() || !name->is_string() || absl::string_view(name->get_ref<const std::string&>()) != ifname ||
        !iface.contains("sandbox")) {
      continue;
    }
    auto addr = ip.find("address");
    if (addr == ip.end() || !addr->is_string()) return bad("an \"ips\" entry has no address");
    auto p = net::IpPrefix::Parse(addr->get_ref<const std::string&>());
    if (!p.ok()) return bad(p.status().message());
    out.push_back(*p);
  }
  return out;
}

json EncodeError(absl::string_view version, int code, absl::string_view details) {
  return {{"cniVersion", version}, {"code", code}, {"msg", CniCodeSummary(code)},
          {"details", details}};
}

}  // namespace weft::cni
