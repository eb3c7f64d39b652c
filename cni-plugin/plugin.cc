#include <string>

#include "absl/strings/str_cat.h"
#include "cni-plugin/cni_result.h"
#include "cni-plugin/commands.h"
#include "lib/config/cni_error.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

PluginOutput Fail(absl::string_view version, const absl::Status& s) {
  return {1, Dump(EncodeError(version, CniCodeOf(s), s.message()))};
}

// The version to answer errors in: the config's when it names a supported one.
std::string ErrorVersion(absl::string_view stdin_data) {
  json j = json::parse(stdin_data.begin(), stdin_data.end(), nullptr, false);
  if (j.is_object()) {
    auto it = j.find("cniVersion");
    if (it != j.end() && it->is_string()) {
      for (const auto& v : SupportedVersions()) {
        if (v == *it) return v;
      }
    }
  }
  return std::string(kLatestVersion);
}

}  // namespace

PluginOutput RunPlugin(GetEnvFn getenv_fn, absl::string_view stdin_data) {
  absl::StatusOr<CniEnv> env = ParseCniEnv(getenv_fn);
  if (!env.ok()) return Fail(ErrorVersion(stdin_data), env.status());
  if (env->command == Command::kVersion) {
    return {0, Dump({{"cniVersion", kLatestVersion}, {"supportedVersions", SupportedVersions()}})};
  }
  absl::StatusOr<CniNetConf> conf = ParseCniNetConf(stdin_data);
  if (!conf.ok()) return Fail(ErrorVersion(stdin_data), conf.status());
  const std::string& version = conf->cni_version;
  if ((env->command == Command::kGc || env->command == Command::kStatus) &&
      CompareVersions(version, "1.1.0") < 0) {
    return Fail(version, CniError(kIncompatibleVersion, absl::StatusCode::kInvalidArgument,
                                  absl::StrCat(CommandName(env->command),
                                               " needs cniVersion 1.1.0, not ", version)));
  }
  absl::Status s;
  switch (env->command) {
    case Command::kAdd: {
      absl::StatusOr<json> result = CmdAdd(*env, *conf);
      if (!result.ok()) return Fail(version, result.status());
      return {0, Dump(*result)};
    }
    case Command::kDel: s = CmdDel(*env, *conf); break;
    case Command::kCheck: s = CmdCheck(*env, *conf); break;
    case Command::kGc: s = CmdGc(*env, *conf); break;
    case Command::kStatus: s = CmdStatus(*env, *conf); break;
    case Command::kVersion: break;
  }
  if (!s.ok()) return Fail(version, s);
  return {0, ""};
}

}  // namespace weft::cni
