#include "controller/kube_admission.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::controller {

int TokenReviewAdmission::reviews() const {
  std::lock_guard<std::mutex> l(mu_);
  return reviews_;
}

absl::StatusOr<TokenReviewAdmission::Reviewed> TokenReviewAdmission::Review(const std::string& token) {
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
  Reviewed out;
  out.at = now;
  const nlohmann::json user = status.value("user", nlohmann::json::object());
  out.username = user.value("username", "");
  if (auto extra = user.find("extra"); extra != user.end() && extra->is_object()) {
    auto n = extra->find("authentication.kubernetes.io/node-name");
    if (n != extra->end() && n->is_array() && !n->empty() && (*n)[0].is_string()) out.node = (*n)[0].get<std::string>();
  }
  std::lock_guard<std::mutex> l(mu_);
  if (cache_.size() > 100000) cache_.clear();  // bounded
  cache_[token] = out;
  return out;
}

absl::StatusOr<std::vector<std::string>> TokenReviewAdmission::Admit(const v1::Hello& hello) {
  if (hello.token().empty()) {
    return absl::UnauthenticatedError("no token: the agent must send its projected ServiceAccount token");
  }
  auto who = Review(hello.token());
  if (!who.ok()) return who.status();
  if (who->username != opts_.service_account) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token is \"", who->username, "\"'s, not the agent ServiceAccount's (", opts_.service_account, ")"));
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
