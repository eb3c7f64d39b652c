#include "lib/flags/flags.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/flags/version.h"


namespace weft::flags {

std::string VersionString() {
  std::string v = WEFT_VERSION;
  if (std::string commit = WEFT_GIT_COMMIT; !commit.empty()) absl::StrAppend(&v, " (git ", commit, ")");
  return v;
}

FlagSet::FlagSet(std::string program, std::string synopsis)
    : program_(std::move(program)), synopsis_(std::move(synopsis)) {}

FlagSet& FlagSet::Add(Flag f) {
  flags_.push_back(std::move(f));
  return *this;
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::WasSet(absl::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.seen;
  }
  return false;
}

FlagSet& FlagSet::String(absl::string_view name, std::string* out, absl::string_view value_name,
                         absl::string_view help) {
  return Add({.name = std::string(name), .value_name = std::string(value_name),
              .default_text = out->empty() ? "" : absl::StrCat("\"", *out, "\""), .help = std::string(help),
              .set = [out](absl::string_view v) {
                *out = std::string(v);
                return absl::OkStatus();
              }});
}

FlagSet& FlagSet::Bool(absl::string_view name, bool* out, absl::string_view help) {
  return Add({.name = std::string(name), .default_text = *out ? "true" : "", .help = std::string(help),
              .is_bool = true, .set = [out](absl::string_view v) {
                const std::string lower = absl::AsciiStrToLower(v);
                if (lower == "true" || lower == "1" || lower == "yes") *out = true;
                else if (lower == "false" || lower == "0" || lower == "no") *out = false;
                else return absl::InvalidArgumentError(absl::StrCat("takes true or false, not \"", v, "\""));
                return absl::OkStatus();
              }});
}

namespace {

// Sets *out from the text when it is a whole number in [min, max].
template <typename T>
std::function<absl::Status(absl::string_view)> IntSetter(T* out, T min, T max) {
  return [out, min, max](absl::string_view v) {
    T n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
      return absl::InvalidArgumentError(absl::StrCat("takes a whole number from ", min, " to ", max, ", not \"", v, "\""));
    }
    *out = n;
    return absl::OkStatus();
  };
}

}  // namespace

FlagSet& FlagSet::Int(absl::string_view name, int64_t* out, int64_t min, int64_t max, absl::string_view help) {
  return Add({.name = std::string(name), .value_name = "N", .default_text = absl::StrCat(*out),
              .help = std::string(help), .set = IntSetter(out, min, max)});
}

FlagSet& FlagSet::Int(absl::string_view name, int* out, int min, int max, absl::string_view help) {
  return Add({.name = std::string(name), .value_name = "N", .default_text = absl::StrCat(*out),
              .help = std::string(help), .set = IntSetter(out, min, max)});
}

FlagSet& FlagSet::List(absl::string_view name, std::vector<std::string>* out, absl::string_view value_name,
                       absl::string_view help) {
  auto replaced = std::make_shared<bool>(false);
  return Add({.name = std::string(name), .value_name = absl::StrCat(value_name, "[,", value_name, "]"),
              .default_text = absl::StrJoin(*out, ","), .help = std::string(help),
              .set = [out, replaced](absl::string_view v) {
                if (!*replaced) out->clear();
                *replaced = true;
                for (absl::string_view item : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
                  out->emplace_back(absl::StripAsciiWhitespace(item));
                }
                return absl::OkStatus();
              }});
}

FlagSet& FlagSet::Custom(absl::string_view name, absl::string_view value_name, absl::string_view default_text,
                         absl::string_view help, std::function<absl::Status(absl::string_view)> set) {
  return Add({.name = std::string(name), .value_name = std::string(value_name),
              .default_text = std::string(default_text), .help = std::string(help), .set = std::move(set)});
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc, const char* const* argv, int first) {
  std::vector<std::string> positional;
  for (int i = first; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      positional.emplace_back(arg);
      continue;
    }
    absl::string_view name = arg.substr(2);
    std::optional<absl::string_view> inline_value;
    if (const size_t eq = name.find('='); eq != absl::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "help" || name == "version") {
      if (inline_value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      (name == "help" ? help_ : version_) = true;
      continue;
    }
    Flag* f = Find(name);
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    absl::string_view value;
    if (inline_value) {
      value = *inline_value;
    } else if (f->is_bool) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (", f->value_name, ")"));
    }
    if (absl::Status s = f->set(value); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", s.message()));
    }
    f->seen = true;
  }
  return positional;
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", synopsis_, "\n\nflags (--name value or --name=value):\n");
  for (const Flag& f : flags_) {
    std::string left = absl::StrCat("  --", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&left, " ", f.value_name);
    if (left.size() < 34) left.resize(34, ' ');
    else absl::StrAppend(&left, "\n", std::string(34, ' '));
    absl::StrAppend(&out, left, f.help);
    if (!f.default_text.empty()) absl::StrAppend(&out, " (default ", f.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help                          this text\n",
                  "  --version                       the version\n");
  return out;
}

int UsageError(const FlagSet& flags, absl::string_view why) {
  std::fprintf(stderr, "%s: %.*s\nrun '%s --help' for the flags\n", flags.program().c_str(),
               static_cast<int>(why.size()), why.data(), flags.program().c_str());
  return 2;
}

std::optional<int> ParseForMain(FlagSet& flags, int argc, const char* const* argv,
                                 std::vector<std::string>* positional, int first) {
  auto rest = flags.Parse(argc, argv, first);
  if (!rest.ok()) return UsageError(flags, rest.status().message());
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (flags.version_requested()) {
    std::printf("%s %s\n", flags.program().c_str(), VersionString().c_str());
    return 0;
  }
  if (positional != nullptr) {
    *positional = std::move(*rest);
  } else if (!rest->empty()) {
    return UsageError(flags, absl::StrCat("unexpected argument \"", rest->front(), "\""));
  }
  return std::nullopt;
}

}  // namespace weft::flags
