// base/ owns the vocabulary every other folder speaks: dtypes, scalar
// values, path helpers, status macros, phase tracing, UTF-8 checks and the
// version. It depends on abseil and the C++ library only.
//
// DType: the element types a checkpoint can hold, numbered as TensorFlow's
// DataType (and as proto::DataType) so conversion is a checked cast.
//
// Fixed-size types are stored as raw little-endian bytes of DTypeSize()
// each; bool is one byte, 0 or 1; bfloat16 and float16 are their 16-bit
// patterns; complex values are (real, imaginary) pairs. kString holds
// variable-length byte strings. Thread-safe (constants and pure functions).
#ifndef MESHCKPT_BASE_DTYPE_H_
#define MESHCKPT_BASE_DTYPE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

enum class DType : int {
  kFloat32 = 1,
  kFloat64 = 2,
  kInt32 = 3,
  kUint8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kBfloat16 = 14,
  kUint16 = 17,
  kComplex128 = 18,
  kFloat16 = 19,
  kUint32 = 22,
  kUint64 = 23,
};

// Every DType, for tests and tools.
const std::vector<DType>& AllDTypes();
// numpy-style name: "float32", "bfloat16", "complex64", "string", ...
absl::string_view DTypeName(DType dtype);
absl::StatusOr<DType> DTypeFromName(absl::string_view name);
// InvalidArgument for numbers that are not a DType.
absl::StatusOr<DType> DTypeFromEnum(int value);
// Bytes per element; 0 for kString.
int64_t DTypeSize(DType dtype);
// Alignment of an element in memory (its C++ type's alignof): DTypeSize,
// half of it for complex types (two parts); 1 for kString.
int64_t DTypeAlignment(DType dtype);

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_DTYPE_H_
