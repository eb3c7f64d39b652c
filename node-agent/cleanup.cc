#include "node-agent/cleanup.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "lib/net/nl_socket.h"
#include "lib/net/rtnl_link.h"
#include "node-agent/forwarder_client.h"
#include "node-agent/snat_guard.h"

namespace weft::agent {

absl::StatusOr<std::vector<std::string>> CleanupNode(const CleanupOptions& opts) {
  std::vector<std::string> done;
  absl::Status first;
  auto note = [&](const absl::Status& s, const std::string& what) {
    if (s.ok()) done.push_back(what);
    else if (first.ok()) first = s;
  };
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string conflist = opts.cni_conf_dir + "/10-weft.conflist";
  if (fs::remove(conflist, ec)) done.push_back("removed " + conflist);
  // The relay forwarder: releases its allocation and exits.
  if (auto f = ForwarderClient::Connect(RelayForwarderSocket(opts.state_dir)); f.ok()) {
    note((*f)->Stop(), "stopped the relay forwarder (allocation released)");
  }
  // The device: its routes and addresses go with it; wireguard-go exits when it does.
  if (auto nl = net::NlSocket::Open(); nl.ok()) {
    if (net::GetLink(*nl, opts.wg_interface).ok()) {
      note(net::DeleteLink(*nl, opts.wg_interface), "deleted interface " + opts.wg_interface);
    }
  } else {
    note(nl.status(), "");
  }
  for (const char* family : {"inet", "ip"}) {  // ip: an older agent's, IPv4 only
    if (system(absl::StrCat("nft list table ", family, " weft >/dev/null 2>&1").c_str()) != 0) continue;
    const std::string del = absl::StrCat("nft delete table ", family, " weft");
    note(system(del.c_str()) == 0 ? absl::OkStatus() : absl::InternalError(del),
         absl::StrCat("deleted nftables table ", family, " weft (egress masquerade)"));
  }
  if (MitigationInstalled()) note(RemoveMitigation(), "deleted nftables table ip weft-snat (SNAT mitigation)");
  for (const std::string& dir : {opts.cni_data_dir, opts.state_dir}) {
    if (!dir.empty() && fs::exists(dir, ec)) {
      for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
      done.push_back("emptied " + dir);
    }
  }
  if (!opts.cni_bin_file.empty() && fs::remove(opts.cni_bin_file, ec)) done.push_back("removed " + opts.cni_bin_file);
  if (!first.ok()) return first;
  return done;
}

absl::StatusOr<bool> DaemonSetGone(k8s::KubeClient& client, const std::string& ns, const std::string& name) {
  auto ds = client.Get(absl::StrCat("/apis/apps/v1/namespaces/", ns, "/daemonsets/", name));
  if (absl::IsNotFound(ds.status())) return true;
  // The agent's own identity refused (401: its ServiceAccount is gone; 403: its Role or
  // RoleBinding is): `kubectl delete -f` and `helm uninstall` remove those while (or
  // before) the DaemonSet's pods are stopped, so by the time this agent asks, the answer
  // is a refusal. Its token worked when it started: nothing but Weft's removal takes
  // Weft's own ServiceAccount or RBAC away.
  if (absl::IsUnauthenticated(ds.status()) || absl::IsPermissionDenied(ds.status())) return true;
  if (!ds.ok()) return ds.status();
  const nlohmann::json meta = ds->value("metadata", nlohmann::json::object());
  return meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
}

}  // namespace weft::agent
