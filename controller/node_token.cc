#include "controller/node_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace weft::controller {

std::string NodeToken(absl::string_view join_token, absl::string_view node) {
  const std::string msg = absl::StrCat("weft-node-token:", node);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), join_token.data(), static_cast<int>(join_token.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return absl::StrCat("wn1.", absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(mac), len)));
}

bool TokensEqual(absl::string_view presented, absl::string_view expected) {
  if (presented.size() != expected.size() || expected.empty()) return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

}  // namespace weft::controller
