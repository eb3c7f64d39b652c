#include "tests/kube/fake_apiserver.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/k8s/api_status.h"

namespace weft::testing {

struct FakeApiServer::Resource {
  std::string prefix;  // "/api/v1", "/apis/weft.dev/v1alpha1"
  std::string plural;
  std::string kind;
  std::string api_version;
  bool namespaced;
  bool status;  // has a status subresource
  std::string group_resource;  // for messages: "weftnodes.weft.dev"
};

namespace {

using nlohmann::json;


constexpr char kTokenReviews[] = "/apis/authentication.k8s.io/v1/tokenreviews";

struct Target {
  const FakeApiServer::Resource* r = nullptr;
  std::string ns, name, sub;
  std::string Collection() const { return r->prefix + "/" + r->plural; }
  std::string ObjectPath() const {
    return absl::StrCat(r->prefix, ns.empty() ? "" : "/namespaces/" + ns, "/", r->plural, "/", name);
  }
};

const std::vector<FakeApiServer::Resource>& Resources() {
  static const auto* r = new std::vector<FakeApiServer::Resource>{
      {"/api/v1", "nodes", "Node", "v1", false, true, "nodes"},
      {"/api/v1", "pods", "Pod", "v1", true, true, "pods"},
      {"/api/v1", "secrets", "Secret", "v1", true, false, "secrets"},
      {"/api/v1", "configmaps", "ConfigMap", "v1", true, false, "configmaps"},
      {"/apis/weft.dev/v1alpha1", "weftnodes", "WeftNode", "weft.dev/v1alpha1", false, true, "weftnodes.weft.dev"},
      {"/apis/coordination.k8s.io/v1", "leases", "Lease", "coordination.k8s.io/v1", true, false,
       "leases.coordination.k8s.io"},
      {"/apis/apps/v1", "daemonsets", "DaemonSet", "apps/v1", true, true, "daemonsets.apps"},
      {"/apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice", "discovery.k8s.io/v1", true, false,
       "endpointslices.discovery.k8s.io"},
  };
  return *r;
}

// "" when `path` names no known resource.
std::optional<Target> ParsePath(const std::string& path) {
  for (const auto& r : Resources()) {
    if (!absl::StartsWith(path, r.prefix + "/")) continue;
    std::vector<std::string> parts = absl::StrSplit(path.substr(r.prefix.size() + 1), '/');
    Target t;
    t.r = &r;
    size_t i = 0;
    if (r.namespaced && parts.size() >= 3 && parts[0] == "namespaces") {
      t.ns = parts[1];
      i = 2;
    }
    if (i >= parts.size() || parts[i] != r.plural) continue;
    if (r.namespaced && t.ns.empty() && parts.size() > i + 1) continue;  // objects need a namespace
    if (parts.size() > i + 1) t.name = parts[i + 1];
    if (parts.size() > i + 2) t.sub = parts[i + 2];
    if (parts.size() > i + 3 || (!t.sub.empty() && !(t.sub == "status" && r.status))) continue;
    if (t.name.empty() && parts.size() > i + 1) continue;
    return t;
  }
  return std::nullopt;
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 253) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return std::isalnum(static_cast<unsigned char>(n.front())) && std::isalnum(static_cast<unsigned char>(n.back()));
}

void Reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

void Fail(httplib::Response& res, int code, const std::string& reason, const std::string& message) {
  Reply(res, code, k8s::ApiStatus(code, reason, message));
}

// An equality-based label selector ("a=b,c!=d,e==f,g"); nullopt when malformed.
using Selector = std::vector<std::tuple<std::string, std::string, std::string>>;  // key, op, value
std::optional<Selector> ParseSelector(const std::string& text) {
  Selector out;
  for (absl::string_view term : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::string t(term);
    size_t at;
    if ((at = t.find("!=")) != std::string::npos) out.emplace_back(t.substr(0, at), "!=", t.substr(at + 2));
    else if ((at = t.find("==")) != std::string::npos) out.emplace_back(t.substr(0, at), "=", t.substr(at + 2));
    else if ((at = t.find('=')) != std::string::npos) out.emplace_back(t.substr(0, at), "=", t.substr(at + 1));
    else if (t.find_first_of(" ()") == std::string::npos) out.emplace_back(t, "exists", "");
    else return std::nullopt;  // set-based selectors: not needed here
  }
  return out;
}

bool Matches(const Selector& sel, const json& obj) {
  const json labels = obj.contains("metadata") ? obj["metadata"].value("labels", json::object()) : json::object();
  for (const auto& [k, op, v] : sel) {
    const bool has = labels.contains(k) && labels[k].is_string();
    const std::string value = has ? labels[k].get<std::string>() : "";
    if (op == "exists" && !has) return false;
    if (op == "=" && (!has || value != v)) return false;
    if (op == "!=" && has && value == v) return false;
  }
  return true;
}

std::string Now() { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()); }

}  // namespace

absl::StatusOr<std::unique_ptr<FakeApiServer>> FakeApiServer::Start() {
  std::unique_ptr<FakeApiServer> s(new FakeApiServer());
  s->http_ = std::make_unique<httplib::Server>();
  s->http_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  auto handler = [p = s.get()](const httplib::Request& req, httplib::Response& res) { p->Handle(req, res); };
  s->http_->Get(".*", handler);
  s->http_->Post(".*", handler);
  s->http_->Put(".*", handler);
  s->http_->Patch(".*", handler);
  s->http_->Delete(".*", handler);
  s->port_ = s->http_->bind_to_any_port("127.0.0.1");
  if (s->port_ <= 0) return absl::UnavailableError("fake API server: cannot bind 127.0.0.1");
  s->thread_ = std::thread([p = s.get()] { p->http_->listen_after_bind(); });
  for (int i = 0; i < 200 && !s->http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return s;
}

FakeApiServer::~FakeApiServer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeApiServer::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeApiServer::AddToken(const std::string& token, User user) {
  std::lock_guard<std::mutex> l(mu_);
  tokens_[token] = std::move(user);
}

int FakeApiServer::Requests(const std::string& method_and_path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = requests_.find(method_and_path);
  return it == requests_.end() ? 0 : it->second;
}

int FakeApiServer::watches_started() const {
  std::lock_guard<std::mutex> l(mu_);
  return watches_;
}

void FakeApiServer::Compact() {
  std::lock_guard<std::mutex> l(mu_);
  // Like etcd compaction: live watches keep streaming; a watch that starts (or resumes)
  // from any resourceVersion up to now gets 410 Gone.
  compacted_ = rv_ + 1;
}

json FakeApiServer::StoreLocked(const Resource& r, const std::string& ns, const std::string& name, json obj,
                                const std::string& type) {
  const std::string path = absl::StrCat(r.prefix, ns.empty() ? "" : "/namespaces/" + ns, "/", r.plural, "/", name);
  auto old = objects_.find(path);
  json previous = old != objects_.end() ? old->second : json();
  if (type == "MODIFIED" && old != objects_.end()) {
    obj["metadata"]["resourceVersion"] = old->second["metadata"]["resourceVersion"];
    if (obj == old->second) return obj;  // no change: no new resourceVersion, no event
  }
  ++rv_;
  obj["apiVersion"] = r.api_version;
  obj["kind"] = r.kind;
  obj["metadata"]["name"] = name;
  if (r.namespaced) obj["metadata"]["namespace"] = ns;
  if (type == "ADDED") {
    obj["metadata"]["uid"] = absl::StrCat("00000000-0000-4000-8000-", std::string(12 - std::min<size_t>(12, std::to_string(rv_).size()), '0'), rv_);
    obj["metadata"]["creationTimestamp"] = Now();
    obj["metadata"]["generation"] = 1;
  }
  obj["metadata"]["resourceVersion"] = std::to_string(rv_);
  if (type == "DELETED") {
    objects_.erase(path);
  } else {
    objects_[path] = obj;
  }
  events_.push_back({rv_, r.prefix + "/" + r.plural, ns, type, obj, type == "MODIFIED" ? previous : json()});
  changed_.notify_all();
  return obj;
}

absl::StatusOr<json> FakeApiServer::Put(const std::string& path, json object) {
  auto t = ParsePath(path);
  if (!t || t->name.empty() || !t->sub.empty()) return absl::InvalidArgumentError("not an object path: " + path);
  std::lock_guard<std::mutex> l(mu_);
  const bool exists = objects_.contains(t->ObjectPath());
  if (!object.contains("metadata")) object["metadata"] = json::object();
  if (exists) {  // keep what the server owns
    for (const char* k : {"uid", "creationTimestamp", "generation"}) {
      object["metadata"][k] = objects_[t->ObjectPath()]["metadata"][k];
    }
  }
  return StoreLocked(*t->r, t->ns, t->name, std::move(object), exists ? "MODIFIED" : "ADDED");
}

std::optional<json> FakeApiServer::Get(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(path);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

absl::Status FakeApiServer::Delete(const std::string& path) {
  auto t = ParsePath(path);
  if (!t || t->name.empty()) return absl::InvalidArgumentError("not an object path: " + path);
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(t->ObjectPath());
  if (it == objects_.end()) return absl::NotFoundError(path);
  StoreLocked(*t->r, t->ns, t->name, it->second, "DELETED");
  return absl::OkStatus();
}

void FakeApiServer::Handle(const httplib::Request& req, httplib::Response& res) {
  std::unique_lock<std::mutex> l(mu_);
  ++requests_[req.method + " " + req.path];
  std::optional<User> caller;
  if (!tokens_.empty()) {
    const std::string auth = req.get_header_value("Authorization");
    auto it = absl::StartsWith(auth, "Bearer ") ? tokens_.find(auth.substr(7)) : tokens_.end();
    if (it == tokens_.end()) return Fail(res, 401, "Unauthorized", "Unauthorized");
    caller = it->second;
  }
  json body;
  if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object()) return Fail(res, 400, "BadRequest", "the request body is not a JSON object");
  }
  if (req.path == kTokenReviews) {
    if (req.method != "POST") return Fail(res, 405, "MethodNotAllowed", "only POST on tokenreviews");
    if (body.value("kind", "") != "TokenReview" || !body.contains("spec") || !body["spec"].is_object() ||
        !body["spec"].contains("token") || !body["spec"]["token"].is_string()) {
      return Fail(res, 400, "BadRequest", "TokenReview needs spec.token");
    }
    json out = {{"kind", "TokenReview"}, {"apiVersion", "authentication.k8s.io/v1"},
                {"metadata", {{"creationTimestamp", nullptr}}}, {"spec", body["spec"]},
                {"status", {{"user", json::object()}}}};
    auto it = tokens_.find(body["spec"]["token"].get<std::string>());
    std::vector<std::string> wanted = body["spec"].value("audiences", std::vector<std::string>{});
    if (it == tokens_.end()) {
      out["status"]["error"] = "[invalid bearer token, token lookup failed]";
    } else {
      std::vector<std::string> matched;
      for (const auto& a : wanted) {
        if (std::find(it->second.audiences.begin(), it->second.audiences.end(), a) != it->second.audiences.end()) {
          matched.push_back(a);
        }
      }
      if (it->second.reviewed_audiences) {
        out["status"]["authenticated"] = true;
        out["status"]["user"] = {{"username", it->second.username}, {"uid", "uid-" + it->second.username},
                                 {"groups", it->second.groups}};
        if (!it->second.extra.empty()) out["status"]["user"]["extra"] = it->second.extra;
        out["status"]["audiences"] = *it->second.reviewed_audiences;
      } else if (!wanted.empty() && matched.empty()) {
        out["status"]["error"] = "[invalid bearer token, token audiences is invalid for the target audiences]";
      } else {
        out["status"]["authenticated"] = true;
        out["status"]["user"] = {{"username", it->second.username}, {"uid", "uid-" + it->second.username},
                                 {"groups", it->second.groups}};
        if (!it->second.extra.empty()) out["status"]["user"]["extra"] = it->second.extra;
        out["status"]["audiences"] = wanted.empty() ? it->second.audiences : matched;
      }
    }
    return Reply(res, 201, out);
  }
  auto t = ParsePath(req.path);
  if (!t) return Fail(res, 404, "NotFound", "the server could not find the requested resource");
  const Resource& r = *t->r;
  if (t->name.empty()) {  // the collection
    if (req.method == "GET") {
      const std::string watch = req.get_param_value("watch");
      if (watch == "true" || watch == "1") {
        l.unlock();
        return Watch(r, t->ns, req, res);
      }
      auto selector = ParseSelector(req.get_param_value("labelSelector"));
      if (!selector) return Fail(res, 400, "BadRequest", "unable to parse requirement: " + req.get_param_value("labelSelector"));
      json list = {{"kind", r.kind + "List"}, {"apiVersion", r.api_version},
                   {"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", json::array()}};
      for (const auto& [path, obj] : objects_) {
        auto o = ParsePath(path);
        if (o && o->r == t->r && (t->ns.empty() || o->ns == t->ns) && Matches(*selector, obj)) {
          list["items"].push_back(obj);
        }
      }
      return Reply(res, 200, list);
    }
    if (req.method != "POST") return Fail(res, 405, "MethodNotAllowed", req.method + " on a collection");
    if (body.value("kind", "") != r.kind || body.value("apiVersion", "") != r.api_version) {
      return Fail(res, 400, "BadRequest",
                  absl::StrCat("the body is not a ", r.api_version, " ", r.kind, " (apiVersion and kind must match)"));
    }
    const std::string name = body.contains("metadata") ? body["metadata"].value("name", "") : "";
    if (!ValidName(name)) {
      return Fail(res, 422, "Invalid",
                  absl::StrCat(r.kind, " \"", name, "\" is invalid: metadata.name: a lowercase RFC 1123 subdomain"));
    }
    t->name = name;
    if (objects_.contains(t->ObjectPath())) {
      return Fail(res, 409, "AlreadyExists", absl::StrCat(r.group_resource, " \"", name, "\" already exists"));
    }
    if (r.status) body.erase("status");  // the status subresource owns it
    json meta = body["metadata"];
    for (const char* k : {"resourceVersion", "uid", "creationTimestamp", "generation"}) meta.erase(k);
    body["metadata"] = meta;
    return Reply(res, 201, StoreLocked(r, t->ns, name, std::move(body), "ADDED"));
  }
  auto it = objects_.find(t->ObjectPath());
  const std::string not_found = absl::StrCat(r.group_resource, " \"", t->name, "\" not found");
  if (req.method == "GET") {
    if (it == objects_.end()) return Fail(res, 404, "NotFound", not_found);
    return Reply(res, 200, it->second);
  }
  if (req.method == "DELETE") {
    if (it == objects_.end()) return Fail(res, 404, "NotFound", not_found);
    return Reply(res, 200, StoreLocked(r, t->ns, t->name, it->second, "DELETED"));
  }
  if (it == objects_.end()) return Fail(res, 404, "NotFound", not_found);
  const json& old = it->second;
  json next;
  if (req.method == "PUT") {
    const std::string name = body.contains("metadata") ? body["metadata"].value("name", "") : "";
    if (name != t->name) {
      return Fail(res, 400, "BadRequest",
                  absl::StrCat("the name of the object (", name, ") does not match the name on the URL (", t->name, ")"));
    }
    next = body;
  } else if (req.method == "PATCH") {
    if (req.get_header_value("Content-Type") != "application/merge-patch+json") {
      return Fail(res, 415, "UnsupportedMediaType",
                  absl::StrCat("the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"));
    }
    next = old;
    next.merge_patch(body);
  } else {
    return Fail(res, 405, "MethodNotAllowed", req.method);
  }
  // Optimistic concurrency: a resourceVersion in the body must be the current one.
  const std::string want = k8s::ResourceVersionOf(body);
  if (!want.empty() && want != k8s::ResourceVersionOf(old)) {
    return Fail(res, 409, "Conflict",
                absl::StrCat("Operation cannot be fulfilled on ", r.group_resource, " \"", t->name,
                             "\": the object has been modified; please apply your changes to the latest version and try again"));
  }
  if (t->sub == "status") {  // only status changes
    json merged = old;
    if (next.contains("status")) merged["status"] = next["status"];
    else merged.erase("status");
    next = std::move(merged);
  } else {
    if (r.status) {  // status belongs to the subresource
      if (old.contains("status")) next["status"] = old["status"];
      else next.erase("status");
    }
    if (!next.contains("metadata") || !next["metadata"].is_object()) next["metadata"] = json::object();
    for (const char* k : {"uid", "creationTimestamp", "generation", "name", "namespace"}) {
      if (old["metadata"].contains(k)) next["metadata"][k] = old["metadata"][k];
    }
  }
  return Reply(res, 200, StoreLocked(r, t->ns, t->name, std::move(next), "MODIFIED"));
}

void FakeApiServer::Watch(const Resource& r, const std::string& ns, const httplib::Request& req,
                          httplib::Response& res) {
  struct State {
    uint64_t next = 0;  // events after this are to be sent
    std::vector<std::string> initial;
    std::chrono::steady_clock::time_point deadline, last_bookmark;
    bool bookmarks = false;
    bool done = false;
  };
  auto st = std::make_shared<State>();
  int timeout_s = 1800;
  if (std::string t = req.get_param_value("timeoutSeconds"); !t.empty()) (void)absl::SimpleAtoi(t, &timeout_s);
  st->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  st->last_bookmark = std::chrono::steady_clock::now();
  st->bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
  const std::string collection = r.prefix + "/" + r.plural;
  auto parsed = ParseSelector(req.get_param_value("labelSelector"));
  if (!parsed) return Fail(res, 400, "BadRequest", "unable to parse requirement: " + req.get_param_value("labelSelector"));
  const Selector selector = *parsed;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++watches_;
    const std::string rv = req.get_param_value("resourceVersion");
    uint64_t from = 0;
    if (rv.empty() || rv == "0") {  // the current state as ADDED events, then changes
      for (const auto& [path, obj] : objects_) {
        auto o = ParsePath(path);
        if (o && o->r->prefix == r.prefix && o->r->plural == r.plural && (ns.empty() || o->ns == ns) &&
            Matches(selector, obj)) {
          st->initial.push_back(json({{"type", "ADDED"}, {"object", obj}}).dump() + "\n");
        }
      }
      st->next = rv_;
    } else if (!absl::SimpleAtoi(rv, &from)) {
      return Fail(res, 400, "BadRequest", "resourceVersion is not a number");
    } else if (from < compacted_) {
      st->initial.push_back(
          json({{"type", "ERROR"},
                {"object", k8s::ApiStatus(410, "Expired",
                                          absl::StrCat("too old resource version: ", from, " (", compacted_, ")"))}})
              .dump() + "\n");
      st->done = true;
    } else {
      st->next = from;
    }
  }
  res.set_chunked_content_provider(
      "application/json",
      [this, st, collection, ns, selector, kind = r.kind, api = r.api_version](size_t, httplib::DataSink& sink) {
        std::vector<std::string> lines = std::move(st->initial);
        st->initial.clear();
        bool end = st->done;
        if (!end) {
          std::unique_lock<std::mutex> l(mu_);
          auto pending = [&] {
            auto it = std::upper_bound(events_.begin(), events_.end(), st->next,
                                       [](uint64_t v, const Event& e) { return v < e.rv; });
            for (; it != events_.end(); ++it) {
              if (it->collection == collection && (ns.empty() || it->ns == ns)) return true;
            }
            return false;
          };
          if (lines.empty()) changed_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_ || pending(); });
          auto it = std::upper_bound(events_.begin(), events_.end(), st->next,
                                     [](uint64_t v, const Event& e) { return v < e.rv; });
          for (; it != events_.end(); ++it) {
            if (it->collection != collection || (!ns.empty() && it->ns != ns)) continue;
            // What a watch with a label selector sees: objects entering and leaving it.
            const bool now = Matches(selector, it->object);
            const bool before = it->type == "MODIFIED" ? Matches(selector, it->previous) : now;
            std::string type = it->type;
            if (type == "MODIFIED" && now != before) type = now ? "ADDED" : "DELETED";
            if (!now && !before) continue;
            lines.push_back(json({{"type", type}, {"object", it->object}}).dump() + "\n");
          }
          st->next = rv_;
          const auto now = std::chrono::steady_clock::now();
          if (st->bookmarks && now - st->last_bookmark > std::chrono::seconds(1)) {
            st->last_bookmark = now;
            lines.push_back(json({{"type", "BOOKMARK"},
                                  {"object", {{"kind", kind}, {"apiVersion", api},
                                              {"metadata", {{"resourceVersion", std::to_string(rv_)}}}}}})
                                .dump() + "\n");
          }
          end = stopping_ || now > st->deadline;
        }
        for (const auto& line : lines) {
          if (!sink.write(line.data(), line.size())) return false;
        }
        if (end) sink.done();
        return true;
      });
}

}  // namespace weft::testing
