// Reading and writing /proc/sys.
#ifndef WEFT_LIB_SYS_SYSCTL_H_
#define WEFT_LIB_SYS_SYSCTL_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::sys {

// Reads "net/ipv4/ip_forward" (relative to /proc/sys), without the trailing newline.
absl::StatusOr<std::string> ReadSysctl(absl::string_view key);
// Writes `value` only if the current value differs; a read is far cheaper than a write.
absl::Status EnsureSysctl(absl::string_view key, absl::string_view value);

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_SYSCTL_H_
