#include "weftctl/document.h"

#include <yaml-cpp/yaml.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weft::weftctl {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 64;

json Scalar(const YAML::Node& n) {
  const std::string& v = n.Scalar();
  if (n.Tag() == "!") return v;  // quoted: a string whatever it looks like
  if (v == "null" || v == "Null" || v == "NULL" || v == "~" || v.empty()) return nullptr;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  int64_t i = 0;
  if (absl::SimpleAtoi(v, &i)) return i;
  double d = 0;
  if (v.find_first_of("0123456789") != std::string::npos && absl::SimpleAtod(v, &d) &&
      v.find_first_not_of("0123456789+-.eE") == std::string::npos) {
    return d;
  }
  return v;
}

absl::StatusOr<json> Convert(const YAML::Node& n, int depth) {
  if (depth > kMaxDepth) return absl::InvalidArgumentError("YAML nested too deeply");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return Scalar(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : n) {
        auto v = Convert(item, depth + 1);
        if (!v.ok()) return v.status();
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return absl::InvalidArgumentError("YAML map key is not a scalar");
        auto v = Convert(kv.second, depth + 1);
        if (!v.ok()) return v.status();
        out[kv.first.Scalar()] = std::move(*v);
      }
      return out;
    }
  }
  return json(nullptr);
}

}  // namespace

absl::StatusOr<json> ParseDocument(absl::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) return doc;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return Convert(root, 0);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("neither JSON nor YAML: ", e.what()));
  }
}

}  // namespace weft::weftctl

namespace weft::weftctl {

absl::StatusOr<std::vector<json>> ParseDocuments(absl::string_view text) {
  std::vector<json> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(std::string(text))) {
      auto v = Convert(doc, 0);
      if (!v.ok()) return v.status();
      if (!v->is_null()) out.push_back(*std::move(v));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", e.what()));
  }
  return out;
}

}  // namespace weft::weftctl
