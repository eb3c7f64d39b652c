#include "controller/tls_bootstrap.h"

#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::controller {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

absl::Status OpenSslError(const char* what) { return absl::InternalError(absl::StrCat("OpenSSL: ", what)); }

absl::StatusOr<Key> NewKey() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) return OpenSslError("EC key generation");
  return k;
}

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (self-signed when `issuer`
// is null).
absl::StatusOr<Cert> NewCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, long days,
                             const std::vector<std::pair<int, std::string>>& extensions) {
  Cert c(X509_new());
  if (!c) return OpenSslError("X509_new");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslError("RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  ASN1_INTEGER* sn = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
  BN_free(bn);
  if (sn == nullptr) return OpenSslError("serial");
  X509_set_version(c.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);  // an hour of clock skew
  X509_gmtime_adj(X509_getm_notAfter(c.get()), days * 24 * 3600);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  for (const auto& [nid, value] : extensions) {
    if (!AddExtension(c.get(), issuer != nullptr ? issuer : c.get(), nid, value)) return OpenSslError("extension");
  }
  if (X509_sign(c.get(), issuer_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return c;
}

std::string Pem(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, n);
  BIO_free(b);
  return out;
}

std::string Pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, n);
  BIO_free(b);
  return out;
}

absl::StatusOr<TlsMaterial> FromSecret(const nlohmann::json& secret) {
  const nlohmann::json data = secret.value("data", nlohmann::json::object());
  TlsMaterial m;
  for (auto [field, out] : {std::pair{"ca.crt", &m.ca_pem}, {"tls.crt", &m.cert_pem}, {"tls.key", &m.key_pem}}) {
    auto it = data.find(field);
    if (it == data.end() || !it->is_string() || !absl::Base64Unescape(it->get<std::string>(), out) || out->empty()) {
      return absl::FailedPreconditionError(absl::StrCat("the TLS Secret has no ", field));
    }
  }
  return m;
}

}  // namespace

absl::StatusOr<TlsMaterial> GenerateTls(const std::vector<std::string>& dns_names) {
  if (dns_names.empty()) return absl::InvalidArgumentError("the controller certificate needs a DNS name");
  auto ca_key = NewKey();
  if (!ca_key.ok()) return ca_key.status();
  auto ca = NewCert(ca_key->get(), "weft-ca", nullptr, ca_key->get(), 3650,
                    {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}});
  if (!ca.ok()) return ca.status();
  auto key = NewKey();
  if (!key.ok()) return key.status();
  std::vector<std::string> san;
  for (const auto& d : dns_names) {
    // An address (a controller reached by IP, e.g. a node port) is an IP SAN.
    in6_addr a6;
    in_addr a4;
    const bool ip = inet_pton(AF_INET, d.c_str(), &a4) == 1 || inet_pton(AF_INET6, d.c_str(), &a6) == 1;
    san.push_back((ip ? "IP:" : "DNS:") + d);
  }
  auto cert = NewCert(key->get(), dns_names[0], ca->get(), ca_key->get(), 1825,
                      {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                       {NID_ext_key_usage, "serverAuth"},
                       {NID_subject_alt_name, absl::StrJoin(san, ",")},
                       {NID_authority_key_identifier, "keyid:always"}});
  if (!cert.ok()) return cert.status();
  return TlsMaterial{Pem(ca->get()), Pem(cert->get()), Pem(key->get())};
}

absl::StatusOr<TlsMaterial> EnsureTls(k8s::KubeClient& client, const TlsBootstrapOptions& opts) {
  const std::string secrets = absl::StrCat("/api/v1/namespaces/", opts.ns, "/secrets");
  auto secret = client.Get(secrets + "/" + opts.secret);
  if (absl::IsNotFound(secret.status())) {
    auto fresh = GenerateTls(opts.dns_names);
    if (!fresh.ok()) return fresh.status();
    nlohmann::json obj = {
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"type", "kubernetes.io/tls"},
        {"metadata", {{"name", opts.secret}, {"namespace", opts.ns}, {"labels", {{"app.kubernetes.io/name", "weft"}}}}},
        {"data",
         {{"ca.crt", absl::Base64Escape(fresh->ca_pem)},
          {"tls.crt", absl::Base64Escape(fresh->cert_pem)},
          {"tls.key", absl::Base64Escape(fresh->key_pem)}}}};
    secret = client.Create(secrets, obj);
    if (absl::IsAlreadyExists(secret.status())) secret = client.Get(secrets + "/" + opts.secret);  // lost the race
  }
  if (!secret.ok()) return secret.status();
  auto m = FromSecret(*secret);
  if (!m.ok()) return m.status();
  // Publish the CA for the agents (they may not read Secrets).
  const std::string cms = absl::StrCat("/api/v1/namespaces/", opts.ns, "/configmaps");
  nlohmann::json cm = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", opts.ca_configmap}, {"namespace", opts.ns}}},
                       {"data", {{"ca.crt", m->ca_pem}}}};
  auto existing = client.Get(cms + "/" + opts.ca_configmap);
  if (absl::IsNotFound(existing.status())) {
    auto created = client.Create(cms, cm);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
  } else if (!existing.ok()) {
    return existing.status();
  } else if (existing->value("data", nlohmann::json::object()).value("ca.crt", "") != m->ca_pem) {
    auto patched = client.MergePatch(cms + "/" + opts.ca_configmap, {{"data", {{"ca.crt", m->ca_pem}}}});
    if (!patched.ok()) return patched.status();
  }
  return m;
}

}  // namespace weft::controller
