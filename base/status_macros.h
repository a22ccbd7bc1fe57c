// Small status helpers. Abseil 20220623 ships no status macros, so we keep
// the two everyone needs. Thread-compatible (pure macros).
#ifndef MESHCKPT_BASE_STATUS_MACROS_H_
#define MESHCKPT_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MESHCKPT_CONCAT_INNER_(a, b) a##b
#define MESHCKPT_CONCAT_(a, b) MESHCKPT_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` is not OK.
#define MESHCKPT_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status meshckpt_status_ = (expr);            \
    if (!meshckpt_status_.ok()) return meshckpt_status_; \
  } while (0)

// `lhs = value of expr` (a StatusOr), or returns its status.
#define MESHCKPT_ASSIGN_OR_RETURN(lhs, expr) \
  MESHCKPT_ASSIGN_OR_RETURN_IMPL_(MESHCKPT_CONCAT_(meshckpt_sor_, __LINE__), lhs, expr)
#define MESHCKPT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()

#endif  // MESHCKPT_BASE_STATUS_MACROS_H_
