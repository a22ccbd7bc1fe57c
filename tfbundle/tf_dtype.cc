// TensorFlow dtype names and sizes, shape arithmetic, and TensorValue.
#include "meshckpt/tfbundle/tf_dtype.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace meshckpt::tf {

bool IsKnownTfDType(int value) { return value >= 1 && value <= 23; }

std::string TfDTypeName(int value) {
  static const char* const kNames[] = {
      "DT_INVALID",  "DT_FLOAT",   "DT_DOUBLE", "DT_INT32",      "DT_UINT8",
      "DT_INT16",    "DT_INT8",    "DT_STRING", "DT_COMPLEX64",  "DT_INT64",
      "DT_BOOL",     "DT_QINT8",   "DT_QUINT8", "DT_QINT32",     "DT_BFLOAT16",
      "DT_QINT16",   "DT_QUINT16", "DT_UINT16", "DT_COMPLEX128", "DT_HALF",
      "DT_RESOURCE", "DT_VARIANT", "DT_UINT32", "DT_UINT64"};
  if (value >= 0 && value <= 23) return kNames[value];
  return absl::StrCat("DT_<", value, ">");
}

int64_t TfDTypeSize(TfDType dtype) {
  switch (dtype) {
    case TfDType::kUint8:
    case TfDType::kInt8:
    case TfDType::kBool:
    case TfDType::kQint8:
    case TfDType::kQuint8:
      return 1;
    case TfDType::kInt16:
    case TfDType::kUint16:
    case TfDType::kBfloat16:
    case TfDType::kHalf:
    case TfDType::kQint16:
    case TfDType::kQuint16:
      return 2;
    case TfDType::kFloat:
    case TfDType::kInt32:
    case TfDType::kUint32:
    case TfDType::kQint32:
      return 4;
    case TfDType::kDouble:
    case TfDType::kInt64:
    case TfDType::kUint64:
    case TfDType::kComplex64:
      return 8;
    case TfDType::kComplex128:
      return 16;
    default:
      return 0;
  }
}

int64_t TfDTypeSwapUnit(TfDType dtype) {
  if (dtype == TfDType::kComplex64 || dtype == TfDType::kComplex128) {
    return TfDTypeSize(dtype) / 2;
  }
  return TfDTypeSize(dtype);
}

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape) {
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("dimension %d of the shape is %d, negative", i, shape[i]));
    }
    if (shape[i] != 0 && n > kMax / shape[i]) {
      return absl::InvalidArgumentError("the shape has more than 2^62 elements");
    }
    n *= shape[i];
  }
  return n;
}

absl::StatusOr<TensorValue> TensorValue::FromBytes(TfDType dtype,
                                                   std::vector<int64_t> shape,
                                                   std::string bytes) {
  const int64_t elem = TfDTypeSize(dtype);
  if (elem == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(TfDTypeName(dtype), " is not a fixed-size type"));
  }
  absl::StatusOr<int64_t> n = NumElements(shape);
  if (!n.ok()) return n.status();
  if (*n > static_cast<int64_t>(bytes.size()) / elem ||
      *n * elem != static_cast<int64_t>(bytes.size())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s tensor of %d elements needs %d bytes, got %d", TfDTypeName(dtype), *n,
        *n > INT64_MAX / elem ? INT64_MAX : *n * elem, bytes.size()));
  }
  TensorValue v;
  v.dtype_ = dtype;
  v.shape_ = std::move(shape);
  v.num_elements_ = *n;
  v.bytes_ = std::move(bytes);
  return v;
}

absl::StatusOr<TensorValue> TensorValue::FromStrings(std::vector<int64_t> shape,
                                                     std::vector<std::string> strings) {
  absl::StatusOr<int64_t> n = NumElements(shape);
  if (!n.ok()) return n.status();
  if (*n != static_cast<int64_t>(strings.size())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "DT_STRING tensor of %d elements given %d strings", *n, strings.size()));
  }
  TensorValue v;
  v.dtype_ = TfDType::kString;
  v.shape_ = std::move(shape);
  v.num_elements_ = *n;
  v.strings_ = std::move(strings);
  return v;
}

}  // namespace meshckpt::tf
