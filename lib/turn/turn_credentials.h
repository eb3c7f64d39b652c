// TURN long-term credentials derived from a shared secret, the "TURN REST API" scheme
// coturn implements (use-auth-secret / static-auth-secret): the username is
// "<expiry unix time>:<name>", the password base64(HMAC-SHA1(secret, username)). The
// controller issues them to agents; weft-relay (and coturn) check them without any
// per-user state. Pure.
#ifndef WEFT_LIB_TURN_TURN_CREDENTIALS_H_
#define WEFT_LIB_TURN_TURN_CREDENTIALS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::turn {

struct Credentials {
  std::string username;
  std::string password;
};

// Credentials for `name` valid until `expiry_unix`.
Credentials IssueCredentials(absl::string_view secret, absl::string_view name, int64_t expiry_unix);
// The password that goes with `username` under `secret`.
std::string PasswordFor(absl::string_view secret, absl::string_view username);
// The expiry in a REST username; InvalidArgument when it has none.
absl::StatusOr<int64_t> ExpiryOf(absl::string_view username);

// A secret file or Secret value: one secret per line. During a rotation it holds the new
// secret first and the old after it: relays accept every one, credentials are issued
// with the first. Blank lines and surrounding spaces are ignored; each secret is 16+
// characters, at most 4. InvalidArgument otherwise.
absl::StatusOr<std::vector<std::string>> ParseSecrets(absl::string_view text);

}  // namespace weft::turn

#endif  // WEFT_LIB_TURN_TURN_CREDENTIALS_H_
