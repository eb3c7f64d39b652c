#include "controller/kube_admission.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "lib/k8s/sa_token.h"
#include "lib/status/status_macros.h"

namespace weft::controller {

int TokenReviewAdmission::reviews() const {
  std::lock_guard<std::mutex> l(mu_);
  return reviews_;
}

absl::StatusOr<TokenReviewAdmission::Reviewed> TokenReviewAdmission::Review(const std::string& token) try {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.find(token); it != cache_.end() && now - it->second.at < opts_.cache_ttl) return it->second;
    ++reviews_;
  }
  auto r = client_.Create("/apis/authentication.k8s.io/v1/tokenreviews",
                          {{"apiVersion", "authentication.k8s.io/v1"},
                           {"kind", "TokenReview"},
                           {"spec", {{"token", token}, {"audiences", {opts_.audience}}}}});
  if (!r.ok()) return absl::UnavailableError(absl::StrCat("cannot review the agent's token: ", r.status().message()));
  const nlohmann::json status = r->value("status", nlohmann::json::object());
  if (!status.value("authenticated", false)) {
    return absl::UnauthenticatedError(
        absl::StrCat("the API server refused the agent's token: ", status.value("error", "not authenticated")));
  }
  // The audience the API server checked the token against must be ours.
  bool ours = false;
  if (auto a = status.find("audiences"); a != status.end() && a->is_array()) {
    for (const auto& x : *a) ours = ours || (x.is_string() && x.get<std::string>() == opts_.audience);
  }
  if (!ours) {
    return absl::UnauthenticatedError(
        absl::StrCat("the token's audiences do not include \"", opts_.audience, "\" (status.audiences)"));
  }
  Reviewed out;
  out.at = now;
  const nlohmann::json user = status.value("user", nlohmann::json::object());
  out.username = user.is_object() ? user.value("username", "") : "";
  auto first = [&](const char* key) -> std::string {
    if (!user.is_object()) return "";
    auto extra = user.find("extra");
    if (extra == user.end() || !extra->is_object()) return "";
    auto v = extra->find(key);
    if (v == extra->end() || !v->is_array() || v->empty() || !(*v)[0].is_string()) return "";
    return (*v)[0].get<std::string>();
  };
  out.node = first("authentication.kubernetes.io/node-name");
  out.pod = first("authentication.kubernetes.io/pod-name");
  out.pod_uid = first("authentication.kubernetes.io/pod-uid");
  if (out.username == opts_.service_account && !out.pod.empty()) {
    // "system:serviceaccount:<namespace>:<name>": the Pod is in the account's namespace.
    const std::string prefix = "system:serviceaccount:";
    const std::string rest = out.username.substr(prefix.size());
    const std::string ns = rest.substr(0, rest.find(':'));
    ASSIGN_OR_RETURN(out.pod_node, PodNode(ns, out.pod, out.pod_uid));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (cache_.size() > 100000) cache_.clear();  // bounded
  cache_[token] = out;
  return out;
} catch (const nlohmann::json::exception& e) {
  return absl::UnavailableError(absl::StrCat("unreadable TokenReview response: ", e.what()));
}

absl::StatusOr<std::string> TokenReviewAdmission::PodNode(const std::string& ns, const std::string& pod,
                                                          const std::string& uid) try {
  auto p = client_.Get(absl::StrCat("/api/v1/namespaces/", ns, "/pods/", pod));
  if (!p.ok()) {
    if (absl::IsNotFound(p.status())) {
      return absl::PermissionDeniedError(absl::StrCat("the token's Pod ", ns, "/", pod, " does not exist"));
    }
    return absl::UnavailableError(absl::StrCat("cannot read the token's Pod: ", p.status().message()));
  }
  const nlohmann::json meta = p->value("metadata", nlohmann::json::object());
  if (!meta.is_object() || meta.value("uid", "") != uid || uid.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token was bound to an earlier Pod ", ns, "/", pod, " (its UID differs)"));
  }
  bool owned = false;
  for (const auto& o : meta.value("ownerReferences", nlohmann::json::array())) {
    owned = owned || (o.is_object() && o.value("kind", "") == "DaemonSet" && o.value("name", "") == opts_.daemonset);
  }
  if (!owned) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token's Pod ", ns, "/", pod, " does not belong to DaemonSet ", opts_.daemonset));
  }
  const nlohmann::json spec = p->value("spec", nlohmann::json::object());
  const std::string node = spec.is_object() ? spec.value("nodeName", "") : "";
  if (node.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("the token's Pod ", ns, "/", pod, " is not on a node"));
  }
  return node;
} catch (const nlohmann::json::exception& e) {
  return absl::UnavailableError(absl::StrCat("unreadable Pod: ", e.what()));
}

absl::StatusOr<std::vector<std::string>> TokenReviewAdmission::Admit(const v1::Hello& hello) {
  if (hello.token().empty()) {
    return absl::UnauthenticatedError("no token: the agent must send its projected ServiceAccount token");
  }
  // What could never pass a review is refused without one (a flood of junk costs no
  // TokenReview and queues in front of nobody).
  RETURN_IF_ERROR(k8s::PrecheckProjectedToken(hello.token(), opts_.audience, opts_.service_account,
                                              absl::ToUnixSeconds(absl::Now())));
  auto who = Review(hello.token());
  if (!who.ok()) return who.status();
  if (who->username != opts_.service_account) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token is \"", who->username, "\"'s, not the agent ServiceAccount's (", opts_.service_account, ")"));
  }
  if (who->pod.empty()) {
    return absl::PermissionDeniedError(
        "the token is not bound to a Pod: the agent must present its projected ServiceAccount token");
  }
  if (who->pod_node != hello.node()) {
    return absl::PermissionDeniedError(absl::StrCat("the token is bound to Pod ", who->pod, " on node \"",
                                                    who->pod_node, "\", not \"", hello.node(), "\""));
  }
  if (!who->node.empty() && who->node != hello.node()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token was issued on node \"", who->node, "\", not \"", hello.node(), "\""));
  }
  auto node = nodes_.Find(hello.node());
  if (!node) return absl::NotFoundError(absl::StrCat("no Node named \"", hello.node(), "\" in the cluster"));
  if (node->pod_cidrs.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Node \"", hello.node(),
                     "\" has no spec.podCIDRs (run kube-controller-manager with --allocate-node-cidrs, or set them)"));
  }
  return node->pod_cidrs;
}

}  // namespace weft::controller
