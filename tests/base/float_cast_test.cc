// Float casts (base/float_cast.h): round to nearest even against the
// compiler's own conversions and by hand at the ties, special values, and
// every float16 / bfloat16 pattern back and forth.
#include "meshckpt/base/float_cast.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace meshckpt {
namespace {

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The usual float32 -> bfloat16 rounding on the bit pattern.
uint16_t ReferenceBfloat16(float f) {
  const uint32_t b = FloatBits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((b >> 16) | 0x40);
  return static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

float CastToFloat(double d) {
  float out;
  CastFloats(DType::kFloat64, &d, DType::kFloat32, &out, 1);
  return out;
}

TEST(FloatCast, Float64ToFloat32MatchesTheCompiler) {
  std::mt19937_64 rng(7);
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                1e-46,
                                7e-46,
                                1.4e-45,
                                3.4028235677973366e38,
                                3.4028235e38,
                                3.5e38,
                                1e300,
                                -1e-300,
                                std::numeric_limits<double>::infinity()};
  for (int i = 0; i < 200000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, 8);
    if (std::isnan(d)) continue;
    // Mostly values in float32's range, where rounding matters.
    int exp = 0;
    if (i % 4 != 0)
      d = std::ldexp(std::frexp(d, &exp), static_cast<int>(rng() % 300) - 160);
    values.push_back(d);
  }
  for (double d : values) {
    EXPECT_EQ(FloatBits(CastToFloat(d)), FloatBits(static_cast<float>(d))) << d;
  }
}

TEST(FloatCast, Float32ToBfloat16MatchesTheBitRecipe) {
  std::vector<float> in;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 997) {
    float f;
    const uint32_t bits = static_cast<uint32_t>(b);
    std::memcpy(&f, &bits, 4);
    in.push_back(f);
  }
  std::vector<uint16_t> out(in.size());
  CastFloats(DType::kFloat32, in.data(), DType::kBfloat16, out.data(),
             static_cast<int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i], ReferenceBfloat16(in[i])) << std::hex << FloatBits(in[i]);
  }
}

TEST(FloatCast, TiesGoToEven) {
  // bfloat16 has 7 mantissa bits: 1 + 2^-8 lies halfway between 1 and
  // 1 + 2^-7 and goes down to the even 1; 1 + 3 * 2^-8 goes up.
  EXPECT_EQ(DoubleToBfloat16Bits(1 + std::ldexp(1, -8)), 0x3F80);
  EXPECT_EQ(DoubleToBfloat16Bits(1 + 3 * std::ldexp(1, -8)), 0x3F82);
  EXPECT_EQ(DoubleToBfloat16Bits(1 + std::ldexp(1, -8) + std::ldexp(1, -40)), 0x3F81);
  // float16: 2049 is halfway between 2048 and 2050 -> 2048; 2051 -> 2052.
  EXPECT_EQ(DoubleToHalfBits(2049), 0x6800);
  EXPECT_EQ(DoubleToHalfBits(2051), 0x6802);
  // Subnormals: the smallest float16 is 2^-24; half of it ties to 0, a bit
  // more rounds up to it.
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1, -25)), 0x0000);
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1.0000001, -25)), 0x0001);
  EXPECT_EQ(DoubleToHalfBits(-std::ldexp(3, -25)), 0x8002);
  // The largest float16 is 65504; from 65520 up it rounds to infinity.
  EXPECT_EQ(DoubleToHalfBits(65519.99), 0x7BFF);
  EXPECT_EQ(DoubleToHalfBits(65520), 0x7C00);
  EXPECT_EQ(DoubleToBfloat16Bits(-1e39), 0xFF80);
}

TEST(FloatCast, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(DoubleToHalfBits(inf), 0x7C00);
  EXPECT_EQ(DoubleToHalfBits(-inf), 0xFC00);
  EXPECT_EQ(DoubleToHalfBits(-0.0), 0x8000);
  const uint16_t nan = DoubleToHalfBits(-std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(nan & 0xFC00, 0xFC00);
  EXPECT_NE(nan & 0x03FF, 0);
  // A signalling NaN whose payload sits below bfloat16's bits stays a NaN.
  uint32_t snan = 0x7F800001;
  float f;
  std::memcpy(&f, &snan, 4);
  uint16_t b;
  CastFloats(DType::kFloat32, &f, DType::kBfloat16, &b, 1);
  EXPECT_EQ(b, 0x7FC0);
}

TEST(FloatCast, EveryHalfAndBfloat16PatternRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto b = static_cast<uint16_t>(bits);
    const double h = HalfBitsToDouble(b), bf = Bfloat16BitsToDouble(b);
    if (!std::isnan(h)) {
      ASSERT_EQ(DoubleToHalfBits(h), b) << bits;
    }
    if (!std::isnan(bf)) {
      ASSERT_EQ(DoubleToBfloat16Bits(bf), b) << bits;
      uint32_t as_float = bits << 16;
      float f;
      std::memcpy(&f, &as_float, 4);
      ASSERT_EQ(bf, static_cast<double>(f)) << bits;
    }
  }
  EXPECT_EQ(HalfBitsToDouble(0x0001), std::ldexp(1, -24));
  EXPECT_EQ(HalfBitsToDouble(0x3C00), 1.0);
  EXPECT_EQ(HalfBitsToDouble(0xC000), -2.0);
  // Widening through CastFloats is exact too.
  std::vector<uint16_t> halves(0x7C00);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i);
  std::vector<float> wide(halves.size());
  CastFloats(DType::kFloat16, halves.data(), DType::kFloat32, wide.data(),
             static_cast<int64_t>(halves.size()));
  for (size_t i = 0; i < halves.size(); ++i) {
    ASSERT_EQ(static_cast<double>(wide[i]), HalfBitsToDouble(halves[i]));
  }
}

TEST(FloatCast, WhichDTypes) {
  EXPECT_TRUE(IsFloatDType(DType::kBfloat16));
  EXPECT_TRUE(IsFloatDType(DType::kFloat64));
  EXPECT_FALSE(IsFloatDType(DType::kInt32));
  EXPECT_FALSE(IsFloatDType(DType::kComplex64));
}

}  // namespace
}  // namespace meshckpt
