#include "controller/relay_secret.h"

#include "lib/turn/turn_credentials.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weft::controller {

absl::StatusOr<std::string> EnsureRelaySecret(k8s::KubeClient& client, const std::string& ns,
                                              const std::string& name) {
  const std::string secrets = absl::StrCat("/api/v1/namespaces/", ns, "/secrets");
  auto secret = client.Get(secrets + "/" + name);
  if (absl::IsNotFound(secret.status())) {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return absl::InternalError("RAND_bytes failed");
    const std::string value = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
    nlohmann::json obj = {
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"type", "Opaque"},
        {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app.kubernetes.io/name", "weft"}}}}},
        {"data", {{kRelaySecretKey, absl::Base64Escape(value)}}}};
    secret = client.Create(secrets, obj);
    if (absl::IsAlreadyExists(secret.status())) secret = client.Get(secrets + "/" + name);  // lost the race
  }
  if (!secret.ok()) return secret.status();
  std::string value;
  const nlohmann::json data = secret->value("data", nlohmann::json::object());
  auto it = data.find(kRelaySecretKey);
  if (it == data.end() || !it->is_string() || !absl::Base64Unescape(it->get<std::string>(), &value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("Secret ", ns, "/", name, " has no data.", kRelaySecretKey, " (the relays' TURN shared secret)"));
  }
  auto lines = turn::ParseSecrets(value);  // the first issues; relays accept all (a rotation)
  if (!lines.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Secret ", ns, "/", name, ": data.", kRelaySecretKey, ": ", lines.status().message()));
  }
  return lines->front();
}

}  // namespace weft::controller
