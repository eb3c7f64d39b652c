// WireGuard (Curve25519) keys: generation, public-key derivation, base64 and hex forms.
#ifndef WEFT_LIB_WIREGUARD_KEY_H_
#define WEFT_LIB_WIREGUARD_KEY_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::wireguard {

struct Key {
  std::array<uint8_t, 32> bytes{};

  // A new private key from the system's CSPRNG, clamped as Curve25519 requires.
  static absl::StatusOr<Key> GeneratePrivate();
  // The public key of private key `priv`.
  static absl::StatusOr<Key> PublicFrom(const Key& priv);
  // "base64 as wg(8) prints it" / "64 hex digits as the UAPI uses". InvalidArgument if not.
  static absl::StatusOr<Key> FromBase64(absl::string_view s);
  static absl::StatusOr<Key> FromHex(absl::string_view s);

  std::string ToBase64() const;
  std::string ToHex() const;
  bool IsZero() const;

  friend auto operator<=>(const Key&, const Key&) = default;
  friend bool operator==(const Key&, const Key&) = default;
};

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_KEY_H_
