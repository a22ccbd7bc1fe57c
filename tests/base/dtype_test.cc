// Tests of DType names, sizes and parsing.
#include "meshckpt/base/dtype.h"

#include <set>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

TEST(DType, AllDTypesAreDistinctAndComplete) {
  const std::vector<DType>& all = AllDTypes();
  EXPECT_EQ(all.size(), 16u);
  std::set<int> numbers;
  std::set<std::string> names;
  for (DType d : all) {
    numbers.insert(static_cast<int>(d));
    names.insert(std::string(DTypeName(d)));
  }
  EXPECT_EQ(numbers.size(), all.size());
  EXPECT_EQ(names.size(), all.size());
  EXPECT_EQ(names.count("invalid"), 0u);
  EXPECT_EQ(&AllDTypes(), &all) << "one shared list";
}

TEST(DType, NamesRoundTrip) {
  for (DType d : AllDTypes()) {
    const absl::string_view name = DTypeName(d);
    absl::StatusOr<DType> back = DTypeFromName(name);
    ASSERT_TRUE(back.ok()) << name << ": " << back.status();
    EXPECT_EQ(*back, d) << name;
  }
}

TEST(DType, EnumRoundTrip) {
  for (DType d : AllDTypes()) {
    absl::StatusOr<DType> back = DTypeFromEnum(static_cast<int>(d));
    ASSERT_TRUE(back.ok()) << DTypeName(d) << ": " << back.status();
    EXPECT_EQ(*back, d);
  }
}

TEST(DType, NumpyNames) {
  EXPECT_EQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_EQ(DTypeName(DType::kFloat64), "float64");
  EXPECT_EQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeName(DType::kBfloat16), "bfloat16");
  EXPECT_EQ(DTypeName(DType::kInt8), "int8");
  EXPECT_EQ(DTypeName(DType::kInt16), "int16");
  EXPECT_EQ(DTypeName(DType::kInt32), "int32");
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
  EXPECT_EQ(DTypeName(DType::kUint8), "uint8");
  EXPECT_EQ(DTypeName(DType::kUint16), "uint16");
  EXPECT_EQ(DTypeName(DType::kUint32), "uint32");
  EXPECT_EQ(DTypeName(DType::kUint64), "uint64");
  EXPECT_EQ(DTypeName(DType::kBool), "bool");
  EXPECT_EQ(DTypeName(DType::kComplex64), "complex64");
  EXPECT_EQ(DTypeName(DType::kComplex128), "complex128");
  EXPECT_EQ(DTypeName(DType::kString), "string");
}

TEST(DType, TensorFlowNumbers) {
  EXPECT_EQ(static_cast<int>(DType::kFloat32), 1);
  EXPECT_EQ(static_cast<int>(DType::kInt64), 9);
  EXPECT_EQ(static_cast<int>(DType::kBfloat16), 14);
  EXPECT_EQ(static_cast<int>(DType::kFloat16), 19);
  EXPECT_EQ(static_cast<int>(DType::kUint64), 23);
}

TEST(DType, Sizes) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2);
  EXPECT_EQ(DTypeSize(DType::kBfloat16), 2);
  EXPECT_EQ(DTypeSize(DType::kInt8), 1);
  EXPECT_EQ(DTypeSize(DType::kInt16), 2);
  EXPECT_EQ(DTypeSize(DType::kInt32), 4);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8);
  EXPECT_EQ(DTypeSize(DType::kUint8), 1);
  EXPECT_EQ(DTypeSize(DType::kUint16), 2);
  EXPECT_EQ(DTypeSize(DType::kUint32), 4);
  EXPECT_EQ(DTypeSize(DType::kUint64), 8);
  EXPECT_EQ(DTypeSize(DType::kBool), 1);
  EXPECT_EQ(DTypeSize(DType::kComplex64), 8);
  EXPECT_EQ(DTypeSize(DType::kComplex128), 16);
  EXPECT_EQ(DTypeSize(DType::kString), 0);
}

TEST(DType, UnknownName) {
  for (const char* name : {"float", "Float32", "", "int", "float32 ", "double"}) {
    absl::StatusOr<DType> d = DTypeFromName(name);
    ASSERT_FALSE(d.ok()) << name;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()),
                HasSubstr(std::string("'") + name + "'"));
  }
}

TEST(DType, UnknownNumber) {
  for (int n : {0, 11, 12, 13, 15, 16, 20, 21, 24, 99, -1, 101}) {
    absl::StatusOr<DType> d = DTypeFromEnum(n);
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(std::to_string(n)));
  }
  EXPECT_EQ(DTypeName(static_cast<DType>(99)), "invalid");
  EXPECT_EQ(DTypeSize(static_cast<DType>(99)), 0);
}

}  // namespace
}  // namespace meshckpt
