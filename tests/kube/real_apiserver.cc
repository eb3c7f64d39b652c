#include "tests/kube/real_apiserver.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "lib/status/status_macros.h"
#include "lib/testing/free_port.h"
#include "lib/testing/slurp.h"

#ifndef WEFT_SOURCE_DIR
#define WEFT_SOURCE_DIR "."
#endif

namespace weft::testing {
namespace {

// Runs a shell command; its output (both streams) in `out`.
int Sh(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  std::string text;
  while (size_t n = fread(buf, 1, sizeof(buf), p)) text.append(buf, n);
  int rc = pclose(p);
  if (out) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

absl::StatusOr<RealApiServer::Binaries> RealApiServer::Find(bool build) {
  Binaries b;
  if (const char* env = std::getenv("WEFT_KUBE_APISERVER"); env && *env) {
    b.kube_apiserver = env;
  } else if (build) {
    // The script prints the cached binary's path, building it first if needed.
    std::string out;
    if (Sh(std::string(WEFT_SOURCE_DIR) + "/scripts/kube-apiserver.sh 2>/dev/null", &out) != 0) {
      return absl::NotFoundError("scripts/kube-apiserver.sh failed");
    }
    b.kube_apiserver = std::string(absl::StripAsciiWhitespace(out));
  } else {  // what scripts/kube-apiserver.sh cached: ${WEFT_CACHE:-/var/cache/weft}/kube-apiserver-VERSION/
    const char* cache = std::getenv("WEFT_CACHE");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cache && *cache ? cache : "/var/cache/weft", ec)) {
      if (e.path().filename().string().rfind("kube-apiserver-", 0) == 0 &&
          std::filesystem::exists(e.path() / "kube-apiserver")) {
        b.kube_apiserver = e.path() / "kube-apiserver";
      }
    }
    if (b.kube_apiserver.empty()) return absl::NotFoundError("no cached kube-apiserver (run scripts/kube-apiserver.sh)");
  }
  b.kubectl = std::filesystem::path(b.kube_apiserver).parent_path() / "kubectl";
  for (const auto& p : {b.kube_apiserver, b.kubectl, b.etcd}) {
    if (access(p.c_str(), X_OK) != 0) return absl::NotFoundError(p + " is not there");
  }
  return b;
}

absl::StatusOr<std::unique_ptr<RealApiServer>> RealApiServer::Start(const Binaries& bin,
                                                                    const std::vector<std::string>& extra_ips) {
  std::unique_ptr<RealApiServer> s(new RealApiServer());
  s->bin_ = bin;
  char tmpl[] = "/tmp/weft-apiserver-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  s->dir_ = tmpl;
  const std::string d = s->dir_;
  // Serving certificate for 127.0.0.1 from a CA of its own; the ServiceAccount signing key.
  std::string san = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  for (const auto& ip : extra_ips) san += ",IP:" + ip;
  std::ofstream(d + "/san.ext") << san << "\n";
  std::string out;
  if (Sh(absl::StrCat("cd ", d, " && exec 2>openssl.log && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 ",
                      "-subj /CN=weft-test-apiserver-ca && ",
                      "openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver && ",
                      "openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt ",
                      "-days 2 -extfile san.ext && ",
                      "openssl genrsa -out sa.key 2048 && openssl rsa -in sa.key -pubout -out sa.pub"),
         &out) != 0) {
    return absl::InternalError("openssl: " + out);
  }
  s->ca_file_ = d + "/ca.crt";
  s->admin_token_file_ = d + "/admin.token";
  std::ofstream(s->admin_token_file_) << "weft-test-admin-token-0123456789\n";
  std::ofstream(d + "/tokens.csv") << "weft-test-admin-token-0123456789,weft-admin,weft-admin,\"system:masters\"\n";
  const int etcd_client = FreeLoopbackPort(SOCK_STREAM), etcd_peer = FreeLoopbackPort(SOCK_STREAM);
  s->port_ = FreeLoopbackPort(SOCK_STREAM);
  const std::string etcd_url = absl::StrCat("http://127.0.0.1:", etcd_client);
  s->etcd_ = std::make_unique<lab::ChildProcess>(
      "",
      std::vector<std::string>{bin.etcd, "--name", "weft-test", "--data-dir", d + "/etcd", "--listen-client-urls",
                               etcd_url, "--advertise-client-urls", etcd_url, "--listen-peer-urls",
                               absl::StrCat("http://127.0.0.1:", etcd_peer), "--initial-advertise-peer-urls",
                               absl::StrCat("http://127.0.0.1:", etcd_peer), "--initial-cluster",
                               absl::StrCat("weft-test=http://127.0.0.1:", etcd_peer), "--log-level", "warn"},
      d + "/etcd.log");
  const std::string issuer = "https://kubernetes.default.svc.cluster.local";
  s->apiserver_ = std::make_unique<lab::ChildProcess>(
      "",
      std::vector<std::string>{
          bin.kube_apiserver, "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1", "--advertise-address",
          "127.0.0.1", "--secure-port", std::to_string(s->port_), "--tls-cert-file",
          d + "/apiserver.crt", "--tls-private-key-file", d + "/apiserver.key", "--token-auth-file",
          d + "/tokens.csv", "--authorization-mode", "RBAC", "--service-account-issuer", issuer,
          "--service-account-key-file", d + "/sa.pub", "--service-account-signing-key-file", d + "/sa.key",
          "--api-audiences", issuer, "--service-cluster-ip-range", "10.96.0.0/16",
          // No controller-manager: nothing would create the Secret-based tokens that the
          // ServiceAccount admission plugin insists on for Pods (we make Pods only to bind
          // tokens to them).
          "--disable-admission-plugins", "ServiceAccount", "--allow-privileged=true", "--v", "1"},
      d + "/apiserver.log");
  s->admin_ = std::make_unique<k8s::KubeClient>(
      k8s::KubeConfig{.server = s->url(), .token_file = s->admin_token_file_, .ca_file = s->ca_file_});
  s->kubeconfig_ = d + "/kubeconfig";
  std::ofstream(s->kubeconfig_) << "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: "
                                << s->url() << "\n    certificate-authority: " << s->ca_file_
                                << "\nusers:\n- name: admin\n  user:\n    tokenFile: " << s->admin_token_file_
                                << "\ncontexts:\n- name: test\n  context: {cluster: test, user: admin}\n"
                                << "current-context: test\n";
  RETURN_IF_ERROR(s->WaitReady());
  return s;
}

RealApiServer::~RealApiServer() {
  admin_.reset();
  apiserver_.reset();
  etcd_.reset();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

std::string RealApiServer::url() const { return absl::StrCat("https://127.0.0.1:", port_); }

absl::Status RealApiServer::WaitReady() {
  // Bounded: 90 s (etcd, then the API server's post-start hooks: RBAC bootstrap roles,
  // the kube-system namespace).
  absl::Status last = absl::UnavailableError("not asked yet");
  for (int i = 0; i < 900; ++i) {
    if (apiserver_->Exited() || etcd_->Exited()) break;
    auto ns = admin_->Get("/api/v1/namespaces/kube-system");
    auto role = admin_->Get("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:auth-delegator");
    if (ns.ok() && role.ok()) return absl::OkStatus();
    last = ns.ok() ? role.status() : ns.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::UnavailableError(absl::StrCat("kube-apiserver not ready: ", last.ToString(), "\n--- apiserver.log\n",
                                             Slurp(dir_ + "/apiserver.log").substr(0, 4000), "\n--- etcd.log\n",
                                             Slurp(dir_ + "/etcd.log").substr(0, 2000)));
}

absl::StatusOr<std::string> RealApiServer::Token(const std::string& ns, const std::string& service_account,
                                                 const std::vector<std::string>& audiences,
                                                 const std::string& bound_pod, int seconds) {
  nlohmann::json req = {{"apiVersion", "authentication.k8s.io/v1"},
                        {"kind", "TokenRequest"},
                        {"spec", {{"audiences", audiences}, {"expirationSeconds", seconds}}}};
  if (!bound_pod.empty()) {
    ASSIGN_OR_RETURN(nlohmann::json pod, admin_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/pods/", bound_pod)));
    req["spec"]["boundObjectRef"] = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", bound_pod},
                                     {"uid", pod["metadata"]["uid"]}};
  }
  ASSIGN_OR_RETURN(nlohmann::json r,
                   admin_->Create(absl::StrCat("/api/v1/namespaces/", ns, "/serviceaccounts/", service_account, "/token"),
                                  req));
  if (!r.contains("status") || !r["status"].contains("token")) return absl::InternalError("TokenRequest: " + r.dump());
  return r["status"]["token"].get<std::string>();
}

absl::StatusOr<std::string> RealApiServer::TokenFile(const std::string& name, const std::string& ns,
                                                     const std::string& service_account,
                                                     const std::vector<std::string>& audiences) {
  ASSIGN_OR_RETURN(std::string token, Token(ns, service_account, audiences));
  const std::string path = dir_ + "/" + name + ".token";
  std::ofstream(path) << token << "\n";
  return path;
}

int RealApiServer::Kubectl(const std::vector<std::string>& args, std::string* out) {
  std::string cmd = Quote(bin_.kubectl) + " --kubeconfig " + Quote(kubeconfig_);
  for (const auto& a : args) cmd += " " + Quote(a);
  return Sh(cmd, out);
}

}  // namespace weft::testing
