#include "lib/k8s/sa_token.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace weft::k8s {

absl::StatusOr<TokenClaims> ReadTokenClaims(absl::string_view token) {
  if (token.size() > 16 * 1024) return absl::InvalidArgumentError("the token is longer than 16 KiB");
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError("the token is not a JWT (header.payload.signature)");
  }
  std::string payload;
  if (!absl::WebSafeBase64Unescape(parts[1], &payload)) {
    return absl::InvalidArgumentError("the token's payload is not base64url");
  }
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("the token's payload is not a JSON object");
  TokenClaims c;
  if (auto aud = j.find("aud"); aud != j.end()) {
    if (aud->is_string()) {
      c.audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const auto& a : *aud) {
        if (!a.is_string()) return absl::InvalidArgumentError("the token's aud holds a non-string");
        c.audiences.push_back(a.get<std::string>());
      }
    } else {
      return absl::InvalidArgumentError("the token's aud is neither a string nor an array");
    }
  }
  if (auto exp = j.find("exp"); exp != j.end()) {
    if (!exp->is_number_integer() && !exp->is_number_unsigned()) {
      return absl::InvalidArgumentError("the token's exp is not an integer");
    }
    c.expires = exp->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(exp->get<uint64_t>(), INT64_MAX))
                                          : exp->get<int64_t>();
  }
  if (auto sub = j.find("sub"); sub != j.end()) {
    if (!sub->is_string()) return absl::InvalidArgumentError("the token's sub is not a string");
    c.subject = sub->get<std::string>();
  }
  if (auto k = j.find("kubernetes.io"); k != j.end() && k->is_object()) {
    if (auto pod = k->find("pod"); pod != k->end() && pod->is_object()) {
      if (auto n = pod->find("name"); n != pod->end() && n->is_string()) c.pod_name = n->get<std::string>();
      if (auto u = pod->find("uid"); u != pod->end() && u->is_string()) c.pod_uid = u->get<std::string>();
    }
  }
  return c;
}

absl::Status PrecheckProjectedToken(absl::string_view token, const std::string& audience,
                                    const std::string& service_account, int64_t now_unix) {
  auto c = ReadTokenClaims(token);
  if (!c.ok()) return absl::UnauthenticatedError(c.status().message());
  if (std::find(c->audiences.begin(), c->audiences.end(), audience) == c->audiences.end()) {
    return absl::UnauthenticatedError(absl::StrCat("the token is not for audience \"", audience, "\""));
  }
  if (c->subject != service_account) {
    return absl::UnauthenticatedError(absl::StrCat("the token is not \"", service_account, "\"'s"));
  }
  if (c->expires != 0 && c->expires + 60 < now_unix) return absl::UnauthenticatedError("the token has expired");
  if (c->pod_name.empty()) {
    return absl::UnauthenticatedError("the token is not bound to a Pod: the agent must present its projected token");
  }
  return absl::OkStatus();
}

}  // namespace weft::k8s
