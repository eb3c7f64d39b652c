// IsOk / StatusIs matchers: Debian 12's Abseil has no status_matchers.h.
#ifndef WEFT_LIB_TESTING_STATUS_MATCHERS_H_
#define WEFT_LIB_TESTING_STATUS_MATCHERS_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "absl/strings/string_view.h"

namespace weft::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, substring,
           "has status code " + ::testing::PrintToString(code) + " and a message containing " +
               ::testing::PrintToString(substring)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code && s.message().find(substring) != absl::string_view::npos;
}

}  // namespace weft::testing

#define WEFT_ASSERT_OK(expr) ASSERT_THAT(expr, ::weft::testing::IsOk())
#define WEFT_EXPECT_OK(expr) EXPECT_THAT(expr, ::weft::testing::IsOk())

#endif  // WEFT_LIB_TESTING_STATUS_MATCHERS_H_
