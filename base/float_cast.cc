// Rounding between float16, bfloat16, float32 and float64 (float_cast.h).
#include "meshckpt/base/float_cast.h"

#include <cstring>

namespace meshckpt {
namespace {

uint64_t BitsOf(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}

double DoubleOf(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}

// The bits of the binary format with `exp_bits` exponent and `man_bits`
// mantissa bits (at most 31 in all) nearest to `value`, ties to even.
uint32_t RoundDouble(double value, int exp_bits, int man_bits) {
  const uint64_t b = BitsOf(value);
  const uint32_t sign = static_cast<uint32_t>(b >> 63) << (exp_bits + man_bits);
  const int exp = static_cast<int>((b >> 52) & 0x7FF);
  const uint64_t man = b & ((uint64_t{1} << 52) - 1);
  const uint32_t inf = ((uint32_t{1} << exp_bits) - 1) << man_bits;
  if (exp == 0x7FF) {
    if (man == 0) return sign | inf;
    // NaN: the leading payload bits, made quiet.
    return sign | inf | static_cast<uint32_t>(man >> (52 - man_bits)) |
           (uint32_t{1} << (man_bits - 1));
  }
  if (exp == 0) return sign;  // Zero, or a float64 subnormal: far below any target.
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int target_exp = exp - 1023 + bias;  // Biased; <= 0 means subnormal.
  const uint64_t sig = (uint64_t{1} << 52) | man;
  int shift = 52 - man_bits;
  if (target_exp <= 0) shift += 1 - target_exp;
  if (shift > 53) return sign;  // Below half the smallest subnormal.
  uint64_t rounded = sig >> shift;
  const uint64_t rest = sig & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  if (rest > half || (rest == half && (rounded & 1) != 0)) ++rounded;
  // A normal result carries its hidden bit into the exponent field, and a
  // carry out of the mantissa bumps the exponent: both by addition.
  uint64_t bits = rounded;
  if (target_exp > 0) bits += static_cast<uint64_t>(target_exp - 1) << man_bits;
  if (bits >= inf) return sign | inf;
  return sign | static_cast<uint32_t>(bits);
}

// The exact value of a pattern of the format above.
double UnpackBits(uint32_t bits, int exp_bits, int man_bits) {
  const bool negative = (bits >> (exp_bits + man_bits)) & 1;
  const int exp = static_cast<int>((bits >> man_bits) & ((1u << exp_bits) - 1));
  const uint64_t man = bits & ((1u << man_bits) - 1);
  const int bias = (1 << (exp_bits - 1)) - 1;
  uint64_t out = static_cast<uint64_t>(negative) << 63;
  if (exp == (1 << exp_bits) - 1) {
    out |= uint64_t{0x7FF} << 52 | man << (52 - man_bits);
  } else if (exp != 0) {
    out |= static_cast<uint64_t>(exp - bias + 1023) << 52 | man << (52 - man_bits);
  } else if (man != 0) {
    // Subnormal in the source, normal as a float64: normalize.
    int e = 1 - bias;
    uint64_t m = man;
    while ((m & (uint64_t{1} << man_bits)) == 0) {
      m <<= 1;
      --e;
    }
    out |= static_cast<uint64_t>(e + 1023) << 52 | (m & ((1u << man_bits) - 1))
                                                       << (52 - man_bits);
  }
  return DoubleOf(out);
}

double Load(DType dtype, const char* p) {
  switch (dtype) {
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return HalfBitsToDouble(v);
    }
    case DType::kBfloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return Bfloat16BitsToDouble(v);
    }
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

void Store(DType dtype, double v, char* p) {
  switch (dtype) {
    case DType::kFloat16: {
      const uint16_t b = DoubleToHalfBits(v);
      std::memcpy(p, &b, 2);
      return;
    }
    case DType::kBfloat16: {
      const uint16_t b = DoubleToBfloat16Bits(v);
      std::memcpy(p, &b, 2);
      return;
    }
    case DType::kFloat32: {
      const uint32_t b = RoundDouble(v, 8, 23);
      std::memcpy(p, &b, 4);
      return;
    }
    default:
      std::memcpy(p, &v, 8);
      return;
  }
}

}  // namespace

bool IsFloatDType(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kBfloat16 ||
         dtype == DType::kFloat32 || dtype == DType::kFloat64;
}

uint16_t DoubleToHalfBits(double value) {
  return static_cast<uint16_t>(RoundDouble(value, 5, 10));
}
uint16_t DoubleToBfloat16Bits(double value) {
  return static_cast<uint16_t>(RoundDouble(value, 8, 7));
}
double HalfBitsToDouble(uint16_t bits) { return UnpackBits(bits, 5, 10); }
double Bfloat16BitsToDouble(uint16_t bits) { return UnpackBits(bits, 8, 7); }

void CastFloats(DType from, const void* in, DType to, void* out, int64_t n) {
  const int64_t in_size = DTypeSize(from), out_size = DTypeSize(to);
  if (from == to) {
    std::memcpy(out, in, static_cast<size_t>(n * in_size));
    return;
  }
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  for (int64_t i = 0; i < n; ++i)
    Store(to, Load(from, src + i * in_size), dst + i * out_size);
}

}  // namespace meshckpt
