#include "lib/status/errno_status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace weft {

absl::Status ErrnoStatus(int error_number, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", strerror(error_number));
  switch (error_number) {
    case ENODEV:
    case ESRCH:
    case ENXIO:
      return absl::NotFoundError(message);
    case EBUSY:
      return absl::UnavailableError(message);
    default:
      return absl::ErrnoToStatus(error_number, message);
  }
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace weft
