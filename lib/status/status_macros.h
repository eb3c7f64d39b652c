// RETURN_IF_ERROR and ASSIGN_OR_RETURN: Abseil (20220623, Debian 12) ships neither.
#ifndef WEFT_LIB_STATUS_STATUS_MACROS_H_
#define WEFT_LIB_STATUS_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define WEFT_STATUS_CONCAT_INNER_(a, b) a##b
#define WEFT_STATUS_CONCAT_(a, b) WEFT_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    if (::absl::Status weft_status_ = (expr); !weft_status_.ok()) \
      return weft_status_;                                      \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (a StatusOr<T>); on error returns its
// status, otherwise move-assigns the value to `lhs` (which may declare a variable).
#define ASSIGN_OR_RETURN(lhs, expr) \
  WEFT_ASSIGN_OR_RETURN_IMPL_(WEFT_STATUS_CONCAT_(weft_statusor_, __LINE__), lhs, expr)

#define WEFT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // WEFT_LIB_STATUS_STATUS_MACROS_H_
