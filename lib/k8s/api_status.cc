#include "lib/k8s/api_status.h"

#include "absl/strings/str_cat.h"

namespace weft::k8s {

absl::Status StatusFromResponse(int http_status, absl::string_view body) try {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  std::string message, reason;
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.value("kind", "") == "Status") {
    message = j.value("message", "");
    reason = j.value("reason", "");
  }
  if (message.empty()) message = absl::StrCat("HTTP ", http_status);
  message = absl::StrCat(message, " (HTTP ", http_status, reason.empty() ? "" : ", ", reason, ")");
  switch (http_status) {
    case 400: return absl::InvalidArgumentError(message);
    case 401: return absl::UnauthenticatedError(message);
    case 403: return absl::PermissionDeniedError(message);
    case 404: return absl::NotFoundError(message);
    case 409:
      return reason == "AlreadyExists" ? absl::AlreadyExistsError(message) : absl::AbortedError(message);
    case 410: return absl::OutOfRangeError(message);
    case 415:
    case 422: return absl::InvalidArgumentError(message);
    case 429: return absl::UnavailableError(message);
    default:
      if (http_status >= 500) return absl::UnavailableError(message);
      return absl::UnknownError(message);
  }
} catch (const nlohmann::json::exception& e) {
  return absl::UnknownError(absl::StrCat("HTTP ", http_status, ": unreadable Status body (", e.what(), ")"));
}

nlohmann::json ApiStatus(int code, absl::string_view reason, absl::string_view message) {
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", nlohmann::json::object()},
          {"status", "Failure"},
          {"message", std::string(message)},
          {"reason", std::string(reason)},
          {"code", code}};
}

absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view line) try {
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("watch event is not a JSON object");
  auto type = j.find("type");
  auto object = j.find("object");
  if (type == j.end() || !type->is_string() || object == j.end() || !object->is_object()) {
    return absl::InvalidArgumentError("watch event needs a string \"type\" and an object \"object\"");
  }
  WatchEvent e{type->get<std::string>(), std::move(*object)};
  if (e.type != "ADDED" && e.type != "MODIFIED" && e.type != "DELETED" && e.type != "BOOKMARK" && e.type != "ERROR") {
    return absl::InvalidArgumentError(absl::StrCat("unknown watch event type \"", e.type, "\""));
  }
  return e;
} catch (const nlohmann::json::exception& e) {
  return absl::InvalidArgumentError(absl::StrCat("watch event: ", e.what()));
}

absl::Status WatchErrorStatus(const WatchEvent& e) {
  const int code = e.object.value("code", 500);
  return StatusFromResponse(code, e.object.dump());
}

std::string ResourceVersionOf(const nlohmann::json& obj) try {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto rv = m->find("resourceVersion");
  return rv != m->end() && rv->is_string() ? rv->get<std::string>() : "";
} catch (const nlohmann::json::exception& e) {
  return "";
}

std::string NameOf(const nlohmann::json& obj) try {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto n = m->find("name");
  return n != m->end() && n->is_string() ? n->get<std::string>() : "";
} catch (const nlohmann::json::exception& e) {
  return "";
}

}  // namespace weft::k8s
