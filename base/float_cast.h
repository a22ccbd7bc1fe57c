// Conversions between the floating-point dtypes (float16, bfloat16,
// float32, float64) for an explicit cast, e.g. float32 weights exported as
// bfloat16 for inference.
//
// Every value is rounded to the nearest value of the target type, ties to
// the one with an even last mantissa bit (IEEE 754 roundTiesToEven), in one
// step from the exact source value (float64 to bfloat16 never goes through
// float32, which could round twice). Values beyond the target's largest
// finite value become infinities of their sign, values below half its
// smallest subnormal become zeros of their sign; infinities stay; NaNs stay
// NaN with their sign and leading payload bits, made quiet. Widening
// conversions are exact.
//
//   std::vector<uint16_t> out(n);
//   CastFloats(DType::kFloat32, in, DType::kBfloat16, out.data(), n);
//
// Pure functions; thread-safe.
#ifndef MESHCKPT_BASE_FLOAT_CAST_H_
#define MESHCKPT_BASE_FLOAT_CAST_H_

#include <cstdint>

#include "meshckpt/base/dtype.h"

namespace meshckpt {

// True for a floating-point dtype: float16, bfloat16, float32, float64.
bool IsFloatDType(DType dtype);

// Converts `n` elements of `from` at `in` to `to` at `out` (which must not
// overlap). Both must be IsFloatDType; the same dtype copies.
void CastFloats(DType from, const void* in, DType to, void* out, int64_t n);

// One value: the float16 / bfloat16 bit pattern nearest to `value`, and
// the exact value of a pattern.
uint16_t DoubleToHalfBits(double value);
uint16_t DoubleToBfloat16Bits(double value);
double HalfBitsToDouble(uint16_t bits);
double Bfloat16BitsToDouble(uint16_t bits);

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_FLOAT_CAST_H_
