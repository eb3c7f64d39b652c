// What a projected ServiceAccount token says of itself: the claims in its JWT payload,
// read without checking the signature (only the API server can, with TokenReview). It
// serves to refuse at once what could never pass a review: a token that is not a JWT,
// for another audience or account, expired, or not bound to a Pod. A flood of such
// Hellos then costs no TokenReview and does not queue in front of honest agents.
#ifndef WEFT_LIB_K8S_SA_TOKEN_H_
#define WEFT_LIB_K8S_SA_TOKEN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::k8s {

struct TokenClaims {
  std::vector<std::string> audiences;  // "aud" (a string or an array)
  int64_t expires = 0;                 // "exp", Unix seconds (0: none)
  std::string subject;                 // "sub": "system:serviceaccount:NS:NAME"
  std::string pod_name, pod_uid;       // "kubernetes.io": {"pod": {...}} (bound tokens)
};

// InvalidArgument when `token` is not header.payload.signature with a base64url JSON
// object as payload, or a claim has the wrong type. Bounded: tokens over 16 KiB refused.
absl::StatusOr<TokenClaims> ReadTokenClaims(absl::string_view token);

// Unauthenticated, saying why, unless the claims could be those of `service_account`'s
// projected token for `audience`, bound to a Pod, unexpired at `now_unix` (60 s leeway).
absl::Status PrecheckProjectedToken(absl::string_view token, const std::string& audience,
                                    const std::string& service_account, int64_t now_unix);

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_SA_TOKEN_H_
