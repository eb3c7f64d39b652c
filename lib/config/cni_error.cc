#include "lib/config/cni_error.h"

#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace weft::cni {
namespace {
constexpr absl::string_view kPayloadUrl = "type.weft.dev/cni-error-code";
}  // namespace

absl::Status CniError(int cni_code, absl::StatusCode code, absl::string_view message) {
  absl::Status s(code, message);
  s.SetPayload(kPayloadUrl, absl::Cord(std::to_string(cni_code)));
  return s;
}

int CniCodeOf(const absl::Status& status) {
  if (auto p = status.GetPayload(kPayloadUrl); p.has_value()) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*p), &code)) return code;
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return kInvalidConfig;
    case absl::StatusCode::kUnavailable: return kTryAgainLater;
    case absl::StatusCode::kResourceExhausted: return kPoolExhausted;
    case absl::StatusCode::kDataLoss: return kStoreCorrupt;
    default: return kInternal;
  }
}

absl::string_view CniCodeSummary(int cni_code) {
  switch (cni_code) {
    case kIncompatibleVersion: return "incompatible CNI version";
    case kUnsupportedField: return "unsupported field in network configuration";
    case kUnknownContainer: return "container unknown or does not exist";
    case kInvalidEnvironment: return "invalid necessary environment variables";
    case kIoFailure: return "I/O failure";
    case kDecodeFailure: return "failed to decode content";
    case kInvalidConfig: return "invalid network config";
    case kTryAgainLater: return "try again later";
    case kPluginNotAvailable: return "plugin not available";
    case kPoolExhausted: return "no free pod address on this node";
    case kCheckMismatch: return "interface does not match the ADD result";
    case kStoreCorrupt: return "IPAM store is corrupt";
    default: return "internal error";
  }
}

}  // namespace weft::cni
