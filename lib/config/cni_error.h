// CNI error codes carried inside absl::Status, translated to spec error JSON only at the
// plugin's boundary.
#ifndef WEFT_LIB_CONFIG_CNI_ERROR_H_
#define WEFT_LIB_CONFIG_CNI_ERROR_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace weft::cni {

// Well-known codes (CNI spec, "Error codes") and Weft's own (100+).
enum CniCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kInternal = 100,          // netlink or system call failed; details say which
  kPoolExhausted = 101,     // no free address in the node's pod CIDR
  kCheckMismatch = 102,     // CHECK: the interface differs from the ADD result
  kStoreCorrupt = 103,      // the IPAM store could not be read
};

// A status of `code` (absl) that carries CNI code `cni_code`.
absl::Status CniError(int cni_code, absl::StatusCode code, absl::string_view message);

// The CNI code of `status`: its payload if it has one, else derived from its absl code
// (InvalidArgument → 7, Unavailable → 11, ResourceExhausted → 101, DataLoss → 103,
// anything else → 100).
int CniCodeOf(const absl::Status& status);

// A short "msg" for the error JSON ("invalid network config", ...).
absl::string_view CniCodeSummary(int cni_code);

}  // namespace weft::cni

#endif  // WEFT_LIB_CONFIG_CNI_ERROR_H_
