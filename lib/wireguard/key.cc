#include "lib/wireguard/key.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace weft::wireguard {

absl::StatusOr<Key> Key::GeneratePrivate() {
  Key k;
  if (RAND_bytes(k.bytes.data(), static_cast<int>(k.bytes.size())) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  k.bytes[0] &= 248;
  k.bytes[31] = (k.bytes[31] & 127) | 64;
  return k;
}

absl::StatusOr<Key> Key::PublicFrom(const Key& priv) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.bytes.data(), priv.bytes.size());
  if (pkey == nullptr) return absl::InternalError("X25519 private key rejected");
  Key pub;
  size_t len = pub.bytes.size();
  const int ok = EVP_PKEY_get_raw_public_key(pkey, pub.bytes.data(), &len);
  EVP_PKEY_free(pkey);
  if (ok != 1 || len != 32) return absl::InternalError("X25519 public key derivation failed");
  return pub;
}

absl::StatusOr<Key> Key::FromBase64(absl::string_view s) {
  std::string raw;
  if (s.size() != 44 || s[43] != '=' || !absl::Base64Unescape(s, &raw) || raw.size() != 32) {
    return absl::InvalidArgumentError("a WireGuard key is 44 characters of base64");
  }
  Key k;
  std::copy(raw.begin(), raw.end(), k.bytes.begin());
  return k;
}

absl::StatusOr<Key> Key::FromHex(absl::string_view s) {
  if (s.size() != 64 || !std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); })) {
    return absl::InvalidArgumentError("a WireGuard key in hex is 64 hex digits");
  }
  std::string raw = absl::HexStringToBytes(s);
  Key k;
  std::copy(raw.begin(), raw.end(), k.bytes.begin());
  return k;
}

std::string Key::ToBase64() const {
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string Key::ToHex() const {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

bool Key::IsZero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

}  // namespace weft::wireguard
