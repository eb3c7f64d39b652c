// One command-line parser for every Weft binary.
//
// Flags are "--name value" or "--name=value" (what Kubernetes manifests and Helm charts
// write); booleans are "--name" or "--name=true|false"; list flags take comma-separated
// values and may be repeated (each occurrence appends; the first replaces the default).
// "--" ends the flags; anything else not starting with "--" is a positional argument.
// --help and --version are built in. An unknown flag, a missing value or a value out of
// range is an error that names the flag.
#ifndef WEFT_LIB_FLAGS_FLAGS_H_
#define WEFT_LIB_FLAGS_FLAGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::flags {

// The version every binary prints for --version ("weft 0.4.0 (git abc1234)").
std::string VersionString();

class FlagSet {
 public:
  // `program` names the binary in messages; `synopsis` is the usage line(s) after
  // "usage: " (e.g. "weft-agent --node NAME --controller HOST:PORT [flags]").
  FlagSet(std::string program, std::string synopsis);

  // Each registration keeps a pointer to `out`, which must outlive Parse(). The current
  // value of `*out` is the default shown in Help(). `value_name` is the placeholder shown
  // in Help() ("FILE", "ADDR:PORT").
  FlagSet& String(absl::string_view name, std::string* out, absl::string_view value_name, absl::string_view help);
  FlagSet& Bool(absl::string_view name, bool* out, absl::string_view help);
  // Integers in [min, max]; anything else is an error naming the range.
  FlagSet& Int(absl::string_view name, int64_t* out, int64_t min, int64_t max, absl::string_view help);
  FlagSet& Int(absl::string_view name, int* out, int min, int max, absl::string_view help);
  // Comma-separated values; repeating the flag appends. Empty items are skipped.
  FlagSet& List(absl::string_view name, std::vector<std::string>* out, absl::string_view value_name,
                absl::string_view help);
  // Anything else: `set` receives the text and says whether it is acceptable (its
  // message is shown after the flag's name). `default_text` is shown in Help().
  FlagSet& Custom(absl::string_view name, absl::string_view value_name, absl::string_view default_text,
                  absl::string_view help, std::function<absl::Status(absl::string_view)> set);

  // Parses argv[first..argc). Returns the positional arguments, or InvalidArgument naming
  // the offending flag. Sets help_requested()/version_requested() instead of acting on
  // --help/--version.
  absl::StatusOr<std::vector<std::string>> Parse(int argc, const char* const* argv, int first = 1);

  bool help_requested() const { return help_; }
  bool version_requested() const { return version_; }
  // Whether the flag appeared on the command line (for "one of A or B is required").
  bool WasSet(absl::string_view name) const;

  // "usage: ..." and one line per flag with its default.
  std::string Help() const;
  const std::string& program() const { return program_; }

 private:
  struct Flag {
    std::string name;
    std::string value_name;  // empty for booleans
    std::string default_text;
    std::string help;
    bool is_bool = false;
    std::function<absl::Status(absl::string_view)> set;
    bool seen = false;
  };
  FlagSet& Add(Flag f);
  Flag* Find(absl::string_view name);

  std::string program_;
  std::string synopsis_;
  std::vector<Flag> flags_;
  bool help_ = false;
  bool version_ = false;
};

// Parses for a main(): on --help prints Help() to stdout and returns 0; on --version
// prints "<program> <VersionString()>" and returns 0; on an error prints it and a hint to
// stderr and returns 2. Returns nullopt when the program should go on. Positional
// arguments go to `positional` if given, else any is an error.
std::optional<int> ParseForMain(FlagSet& flags, int argc, const char* const* argv,
                                 std::vector<std::string>* positional = nullptr, int first = 1);

// For checks after parsing ("--node is required"): prints "<program>: <why>" and the hint
// to stderr; returns 2, the usage exit status.
int UsageError(const FlagSet& flags, absl::string_view why);

}  // namespace weft::flags

#endif  // WEFT_LIB_FLAGS_FLAGS_H_
