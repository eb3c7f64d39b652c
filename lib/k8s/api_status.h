// The Kubernetes API's JSON wire format, the parts every client needs: a response's
// HTTP status and Status object as an absl::Status, and one line of a watch stream.
// Pure functions, no I/O.
#ifndef WEFT_LIB_K8S_API_STATUS_H_
#define WEFT_LIB_K8S_API_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace weft::k8s {

// Maps an API response to a status: 2xx → OK; otherwise the code that says what the
// caller should do (404 NotFound, 409 AlreadyExists or Aborted for a resourceVersion
// conflict, 410 OutOfRange for an expired resourceVersion, 401 Unauthenticated, 403
// PermissionDenied, 422 InvalidArgument, 429/5xx Unavailable), with the Status
// object's message when the body carries one.
absl::Status StatusFromResponse(int http_status, absl::string_view body);

// A Status object (kind Status) as the API server writes it for `code`.
nlohmann::json ApiStatus(int code, absl::string_view reason, absl::string_view message);

// One watch event: {"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": {...}}.
struct WatchEvent {
  std::string type;
  nlohmann::json object;
};
// Parses one newline-delimited event. An ERROR event is returned as an event; see
// WatchErrorStatus.
absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view line);
// The status an ERROR event carries (410 Gone → OutOfRange: relist).
absl::Status WatchErrorStatus(const WatchEvent& e);

// metadata.resourceVersion of an object or list ("" when absent).
std::string ResourceVersionOf(const nlohmann::json& obj);
// metadata.name ("" when absent or not a string; never throws on a malformed object).
std::string NameOf(const nlohmann::json& obj);

}  // namespace weft::k8s

#endif  // WEFT_LIB_K8S_API_STATUS_H_
