#include "lib/turn/turn_credentials.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace weft::turn {

std::string PasswordFor(absl::string_view secret, absl::string_view username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &len);
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(mac), len));
}

Credentials IssueCredentials(absl::string_view secret, absl::string_view name, int64_t expiry_unix) {
  Credentials c;
  c.username = absl::StrCat(expiry_unix, ":", name);
  c.password = PasswordFor(secret, c.username);
  return c;
}

absl::StatusOr<int64_t> ExpiryOf(absl::string_view username) {
  const size_t colon = username.find(':');
  int64_t t = 0;
  if (!absl::SimpleAtoi(username.substr(0, colon), &t) || t <= 0) {
    return absl::InvalidArgumentError("the username is not \"<expiry>:<name>\"");
  }
  return t;
}

absl::StatusOr<std::vector<std::string>> ParseSecrets(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (line.size() < 16) return absl::InvalidArgumentError("a secret must be at least 16 characters");
    out.emplace_back(line);
  }
  if (out.empty()) return absl::InvalidArgumentError("no secret");
  if (out.size() > 4) return absl::InvalidArgumentError("at most 4 secrets (a rotation needs 2)");
  return out;
}

}  // namespace weft::turn
