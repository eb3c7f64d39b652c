#include "cni-plugin/cni_env.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/config/cni_error.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {

constexpr std::array<absl::string_view, 5> kKnownArgs = {
    "IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID"};

absl::Status BadEnv(absl::string_view msg) {
  return CniError(kInvalidEnvironment, absl::StatusCode::kInvalidArgument, msg);
}

absl::StatusOr<Command> ParseCommand(absl::string_view s) {
  if (s == "ADD") return Command::kAdd;
  if (s == "DEL") return Command::kDel;
  if (s == "CHECK") return Command::kCheck;
  if (s == "GC") return Command::kGc;
  if (s == "STATUS") return Command::kStatus;
  if (s == "VERSION") return Command::kVersion;
  return BadEnv(absl::StrCat("CNI_COMMAND \"", s, "\" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"));
}

absl::Status ParseArgs(absl::string_view text, std::map<std::string, std::string>& out) {
  bool ignore_unknown = false;
  std::vector<std::string> unknown;
  for (absl::string_view kv : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty() || kv.find('=') == absl::string_view::npos) {
      return BadEnv(absl::StrCat("CNI_ARGS: \"", kv, "\" is not KEY=VALUE"));
    }
    if (p.first == "IgnoreUnknown") {
      ignore_unknown = absl::EqualsIgnoreCase(p.second, "1") || absl::EqualsIgnoreCase(p.second, "true");
    }
    if (std::find(kKnownArgs.begin(), kKnownArgs.end(), p.first) == kKnownArgs.end()) {
      unknown.emplace_back(p.first);
    }
    out[std::string(p.first)] = std::string(p.second);
  }
  if (!unknown.empty() && !ignore_unknown) {
    return BadEnv(absl::StrCat("CNI_ARGS: unknown key \"", unknown.front(),
                               "\" (add IgnoreUnknown=1 to ignore unknown keys)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view CniEnv::pod_namespace() const {
  auto it = args.find("K8S_POD_NAMESPACE");
  return it == args.end() ? "" : absl::string_view(it->second);
}

absl::string_view CniEnv::pod_name() const {
  auto it = args.find("K8S_POD_NAME");
  return it == args.end() ? "" : absl::string_view(it->second);
}

absl::string_view CommandName(Command c) {
  switch (c) {
    case Command::kAdd: return "ADD";
    case Command::kDel: return "DEL";
    case Command::kCheck: return "CHECK";
    case Command::kGc: return "GC";
    case Command::kStatus: return "STATUS";
    case Command::kVersion: return "VERSION";
  }
  return "?";
}

bool ValidIfName(absl::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '\0';
  });
}

bool ValidContainerId(absl::string_view id) {
  if (id.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

absl::StatusOr<CniEnv> ParseCniEnv(GetEnvFn getenv_fn) {
  auto get = [&](const char* k) -> std::string {
    const char* v = getenv_fn(k);
    return v ? v : "";
  };
  CniEnv env;
  std::string command = get("CNI_COMMAND");
  if (command.empty()) return BadEnv("CNI_COMMAND is not set");
  auto c = ParseCommand(command);
  if (!c.ok()) return c.status();
  env.command = *c;
  env.container_id = get("CNI_CONTAINERID");
  env.netns = get("CNI_NETNS");
  env.ifname = get("CNI_IFNAME");
  env.path = get("CNI_PATH");
  const bool attachment = env.command == Command::kAdd || env.command == Command::kDel ||
                          env.command == Command::kCheck;
  if (!attachment) return env;

  if (!ValidContainerId(env.container_id)) {
    return BadEnv(env.container_id.empty()
                      ? "CNI_CONTAINERID is not set"
                      : absl::StrCat("CNI_CONTAINERID \"", env.container_id, "\" is invalid"));
  }
  if (!ValidIfName(env.ifname)) {
    return BadEnv(env.ifname.empty() ? "CNI_IFNAME is not set"
                                     : absl::StrCat("CNI_IFNAME \"", env.ifname, "\" is not a valid interface name"));
  }
  if (env.netns.empty() && env.command != Command::kDel) {
    return BadEnv(absl::StrCat("CNI_NETNS is not set (required for ", command, ")"));
  }
  if (absl::Status s = ParseArgs(get("CNI_ARGS"), env.args); !s.ok()) return s;
  return env;
}

}  // namespace weft::cni
