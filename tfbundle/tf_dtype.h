// TfDType: TensorFlow's DataType numbers as they appear in a TensorBundle,
// with element sizes, and TensorValue, an owning tensor of one of them.
//
// Fixed-size values are raw little-endian bytes in row-major order (bool is
// one byte, bfloat16 and half their 16-bit patterns, complex (re, im) pairs,
// quantized types their underlying integers). Strings are byte strings.
// Thread-safe: constants, pure functions and immutable values.
#ifndef MESHCKPT_TFBUNDLE_TF_DTYPE_H_
#define MESHCKPT_TFBUNDLE_TF_DTYPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace meshckpt::tf {

enum class TfDType : int {
  kInvalid = 0,
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUint8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kQint8 = 11,
  kQuint8 = 12,
  kQint32 = 13,
  kBfloat16 = 14,
  kQint16 = 15,
  kQuint16 = 16,
  kUint16 = 17,
  kComplex128 = 18,
  kHalf = 19,
  kResource = 20,
  kVariant = 21,
  kUint32 = 22,
  kUint64 = 23,
};

// Whether `value` is one of the enumerators above other than kInvalid.
bool IsKnownTfDType(int value);
// "DT_FLOAT", ..., or "DT_<n>" for numbers this library does not know.
std::string TfDTypeName(int value);
inline std::string TfDTypeName(TfDType d) { return TfDTypeName(static_cast<int>(d)); }
// Bytes per element of fixed-size types; 0 for string, resource, variant and
// unknown numbers.
int64_t TfDTypeSize(TfDType dtype);
// The unit that byte order applies to: the element size, or half of it for
// complex types (each part is swapped on its own).
int64_t TfDTypeSwapUnit(TfDType dtype);

// Elements of a shape: InvalidArgument for negative dimensions or a product
// above 2^62.
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);

class TensorValue {
 public:
  // A fixed-size tensor from its little-endian bytes; the byte count must be
  // NumElements(shape) * TfDTypeSize(dtype).
  static absl::StatusOr<TensorValue> FromBytes(TfDType dtype, std::vector<int64_t> shape,
                                               std::string bytes);
  // A DT_STRING tensor with one string per element, row-major.
  static absl::StatusOr<TensorValue> FromStrings(std::vector<int64_t> shape,
                                                 std::vector<std::string> strings);

  TfDType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  // Fixed-size types: the bytes. Empty for strings.
  const std::string& bytes() const { return bytes_; }
  // DT_STRING: the elements. Empty otherwise.
  const std::vector<std::string>& strings() const { return strings_; }

  friend bool operator==(const TensorValue& a, const TensorValue& b) {
    return a.dtype_ == b.dtype_ && a.shape_ == b.shape_ && a.bytes_ == b.bytes_ &&
           a.strings_ == b.strings_;
  }
  friend bool operator!=(const TensorValue& a, const TensorValue& b) { return !(a == b); }

 private:
  TensorValue() = default;
  TfDType dtype_ = TfDType::kInvalid;
  std::vector<int64_t> shape_;
  int64_t num_elements_ = 0;
  std::string bytes_;
  std::vector<std::string> strings_;
};

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_TF_DTYPE_H_
