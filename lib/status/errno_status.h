// Maps errno values to absl::Status once, naming the object that failed.
#ifndef WEFT_LIB_STATUS_ERRNO_STATUS_H_
#define WEFT_LIB_STATUS_ERRNO_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace weft {

// ErrnoToStatus(errno, "RTM_NEWLINK weft1a2b") → e.g. AlreadyExists("RTM_NEWLINK
// weft1a2b: File exists"). EEXIST maps to AlreadyExists, ENOENT/ENODEV/ESRCH to NotFound,
// EAGAIN/EBUSY/EINTR to Unavailable, EPERM/EACCES to PermissionDenied.
absl::Status ErrnoStatus(int error_number, absl::string_view what);

// Adds context in front of a status message, keeping its code: "open netns x: <msg>".
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace weft

#endif  // WEFT_LIB_STATUS_ERRNO_STATUS_H_
