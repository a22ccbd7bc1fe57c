// TrackedValue: scalars and per-rank values saved beside the variables.
#include "meshckpt/checkpoint/object/tracked_value.h"

#include "absl/strings/str_cat.h"

namespace meshckpt {

std::unique_ptr<TrackedValue> TrackedValue::Create(Value initial, Scope scope,
                                                   RankPolicy policy) {
  return std::unique_ptr<TrackedValue>(
      new TrackedValue(std::move(initial), scope, policy));
}

absl::Status TrackedValue::set(Value v) {
  if (v.index() != value_.index()) {
    return absl::InvalidArgumentError(absl::StrCat("value of type ", DTypeName(dtype()),
                                                   " cannot be set to another type"));
  }
  value_ = std::move(v);
  return absl::OkStatus();
}

DType TrackedValue::dtype() const {
  switch (value_.index()) {
    case 0:
      return DType::kInt64;
    case 1:
      return DType::kFloat64;
    default:
      return DType::kString;
  }
}

}  // namespace meshckpt
