#include "lib/k8s/kube_client.h"

#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weft::k8s {
namespace {

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

}  // namespace

absl::StatusOr<KubeConfig> KubeConfig::InCluster() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr) {
    return absl::FailedPreconditionError("not in a pod: KUBERNETES_SERVICE_HOST/PORT are not set (give --kube-api)");
  }
  KubeConfig c;
  const std::string h = host;
  c.server = absl::StrCat("https://", h.find(':') != std::string::npos ? "[" + h + "]" : h, ":", port);
  c.token_file = absl::StrCat(kServiceAccountDir, "/token");
  c.ca_file = absl::StrCat(kServiceAccountDir, "/ca.crt");
  return c;
}

KubeClient::KubeClient(KubeConfig config) : config_(std::move(config)) {}
KubeClient::~KubeClient() = default;

std::unique_ptr<httplib::Client> KubeClient::NewHttpClient() {
  auto c = std::make_unique<httplib::Client>(config_.server);
  c->set_connection_timeout(config_.timeout.count(), 0);
  c->set_read_timeout(config_.timeout.count(), 0);
  c->set_write_timeout(config_.timeout.count(), 0);
  c->set_keep_alive(true);
  if (!config_.ca_file.empty()) {
    c->set_ca_cert_path(config_.ca_file);
    c->enable_server_certificate_verification(true);
  }
  return c;
}

std::string KubeClient::Token() {  // mu_ held
  if (config_.token_file.empty()) return "";
  const auto now = std::chrono::steady_clock::now();
  if (token_.empty() || now - token_read_ > std::chrono::minutes(1)) {
    token_ = ReadTrimmed(config_.token_file);
    token_read_ = now;
  }
  return token_;
}

absl::StatusOr<nlohmann::json> KubeClient::Send(const std::string& method, const std::string& path,
                                                const std::string& body, const std::string& content_type) {
  httplib::Headers headers = {{"Accept", "application/json"}};
  std::unique_ptr<httplib::Client> http;
  {
    // A connection of the pool (or a new one): requests from several threads run at
    // once, each on its own connection.
    std::lock_guard<std::mutex> l(mu_);
    if (std::string t = Token(); !t.empty()) headers.emplace("Authorization", "Bearer " + t);
    if (!idle_.empty()) {
      http = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!http) http = NewHttpClient();
  httplib::Result r = method == "GET"    ? http->Get(path.c_str(), headers)
                     : method == "POST" ? http->Post(path.c_str(), headers, body, content_type.c_str())
                     : method == "PUT"  ? http->Put(path.c_str(), headers, body, content_type.c_str())
                                        : http->Patch(path.c_str(), headers, body, content_type.c_str());
  {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_.size() < kIdleConnections) idle_.push_back(std::move(http));
  }
  if (!r) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", config_.server, path, ": ", httplib::to_string(r.error())));
  }
  if (absl::Status s = StatusFromResponse(r->status, r->body); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(method, " ", path, ": ", s.message()));
  }
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError(absl::StrCat(method, " ", path, ": the response is not JSON"));
  return j;
}

absl::StatusOr<nlohmann::json> KubeClient::Get(const std::string& path) { return Send("GET", path, "", ""); }

absl::StatusOr<nlohmann::json> KubeClient::Create(const std::string& collection, const nlohmann::json& object) {
  return Send("POST", collection, object.dump(), "application/json");
}

absl::StatusOr<nlohmann::json> KubeClient::Replace(const std::string& path, const nlohmann::json& object) {
  return Send("PUT", path, object.dump(), "application/json");
}

absl::StatusOr<nlohmann::json> KubeClient::MergePatch(const std::string& path, const nlohmann::json& patch) {
  return Send("PATCH", path, patch.dump(), "application/merge-patch+json");
}

absl::Status KubeClient::Watch(const std::string& path, const std::string& resource_version, int timeout_seconds,
                               const std::function<bool(WatchEvent)>& on_event, std::stop_token stop) {
  std::unique_ptr<httplib::Client> c = NewHttpClient();
  // The server ends the stream after timeoutSeconds; allow for a late bookmark.
  c->set_read_timeout(timeout_seconds + 30, 0);
  httplib::Headers headers = {{"Accept", "application/json"}};
  {
    std::lock_guard<std::mutex> l(mu_);
    if (std::string t = Token(); !t.empty()) headers.emplace("Authorization", "Bearer " + t);
  }
  const std::string url =
      absl::StrCat(path, path.find('?') == std::string::npos ? "?" : "&", "watch=true&allowWatchBookmarks=true",
                   resource_version.empty() ? "" : "&resourceVersion=" + resource_version,
                   "&timeoutSeconds=", timeout_seconds);
  std::stop_callback on_stop(stop, [&c] { c->stop(); });
  int http_status = 0;
  std::string pending, error_body;
  absl::Status event_error;
  auto r = c->Get(
      url.c_str(), headers,
      [&](const httplib::Response& res) {
        http_status = res.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (http_status != 200) {
          error_body.append(data, n);
          return error_body.size() < (1 << 20);
        }
        pending.append(data, n);
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
          std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (absl::StripAsciiWhitespace(line).empty()) continue;
          auto e = ParseWatchEvent(line);
          if (!e.ok()) {
            event_error = e.status();
            return false;
          }
          if (!on_event(*std::move(e))) return false;
        }
        return !stop.stop_requested() && pending.size() < (16 << 20);
      });
  if (stop.stop_requested()) return absl::CancelledError("watch stopped");
  if (!event_error.ok()) return absl::DataLossError(absl::StrCat("watch ", path, ": ", event_error.message()));
  if (http_status != 0 && http_status != 200) {
    absl::Status s = StatusFromResponse(http_status, error_body);
    return absl::Status(s.code(), absl::StrCat("watch ", path, ": ", s.message()));
  }
  if (!r && r.error() != httplib::Error::Canceled) {
    return absl::UnavailableError(absl::StrCat("watch ", path, ": ", httplib::to_string(r.error())));
  }
  return absl::OkStatus();
}

}  // namespace weft::k8s
