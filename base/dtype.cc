// DType names, sizes and parsing.
#include "meshckpt/base/dtype.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshckpt {
namespace {

struct DTypeInfo {
  DType dtype;
  absl::string_view name;
  int64_t size;
};

constexpr DTypeInfo kInfo[] = {
    {DType::kFloat16, "float16", 2},
    {DType::kBfloat16, "bfloat16", 2},
    {DType::kFloat32, "float32", 4},
    {DType::kFloat64, "float64", 8},
    {DType::kInt8, "int8", 1},
    {DType::kInt16, "int16", 2},
    {DType::kInt32, "int32", 4},
    {DType::kInt64, "int64", 8},
    {DType::kUint8, "uint8", 1},
    {DType::kUint16, "uint16", 2},
    {DType::kUint32, "uint32", 4},
    {DType::kUint64, "uint64", 8},
    {DType::kBool, "bool", 1},
    {DType::kComplex64, "complex64", 8},
    {DType::kComplex128, "complex128", 16},
    {DType::kString, "string", 0},
};

const DTypeInfo* Find(DType dtype) {
  for (const DTypeInfo& i : kInfo) {
    if (i.dtype == dtype) return &i;
  }
  return nullptr;
}

}  // namespace

const std::vector<DType>& AllDTypes() {
  static const std::vector<DType>* all = [] {
    auto* v = new std::vector<DType>;
    for (const DTypeInfo& i : kInfo) v->push_back(i.dtype);
    return v;
  }();
  return *all;
}

absl::string_view DTypeName(DType dtype) {
  const DTypeInfo* i = Find(dtype);
  return i ? i->name : "invalid";
}

absl::StatusOr<DType> DTypeFromName(absl::string_view name) {
  for (const DTypeInfo& i : kInfo) {
    if (i.name == name) return i.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

absl::StatusOr<DType> DTypeFromEnum(int value) {
  const DTypeInfo* i = Find(static_cast<DType>(value));
  if (i == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown dtype number ", value));
  }
  return i->dtype;
}

int64_t DTypeSize(DType dtype) {
  const DTypeInfo* i = Find(dtype);
  return i ? i->size : 0;
}

int64_t DTypeAlignment(DType dtype) {
  const int64_t size = DTypeSize(dtype);
  if (size == 0) return 1;
  return dtype == DType::kComplex64 || dtype == DType::kComplex128 ? size / 2 : size;
}

}  // namespace meshckpt
