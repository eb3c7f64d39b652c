// What an admin pipes into `weftctl explain --file`: JSON or YAML as kubectl prints it
// (`-o json`, `-o yaml`), or the controller's /status. Pure: text in, JSON value out.
#ifndef WEFT_WEFTCTL_DOCUMENT_H_
#define WEFT_WEFTCTL_DOCUMENT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace weft::weftctl {

// JSON if the text is JSON, else YAML (one document) converted to the JSON it stands for:
// quoted scalars stay strings; plain ones become numbers, booleans or null when YAML 1.2's
// core schema says so. InvalidArgument (with the parser's line) when it is neither.
absl::StatusOr<nlohmann::json> ParseDocument(absl::string_view text);

// Every document of a YAML stream ("---" separated, as `helm template` prints), each
// converted as above; empty documents are skipped.
absl::StatusOr<std::vector<nlohmann::json>> ParseDocuments(absl::string_view text);

}  // namespace weft::weftctl

#endif  // WEFT_WEFTCTL_DOCUMENT_H_
