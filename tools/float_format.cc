// Float text for `meshckpt inspect`: shortest round-trip decimals per float
// type, Python's float repr, and numpy's float columns (see float_format.h).
#include "meshckpt/tools/float_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace meshckpt {
namespace format {
namespace {

constexpr int kPrecision = 8;  // numpy's default print precision.

// A finite value as decimal digits: |value| = d0.d1d2... x 10^exp.
struct Decimal {
  bool negative = false;
  std::string digits = "0";  // No trailing zeros (except a lone "0").
  int exp = 0;
};

// Parses "[-]d[.ddd]e[+-]xx" (printf %e / to_chars scientific).
Decimal ParseScientific(absl::string_view s) {
  Decimal d;
  if (!s.empty() && s[0] == '-') {
    d.negative = true;
    s.remove_prefix(1);
  }
  const size_t e = s.find_first_of("eE");
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  d.exp = e == absl::string_view::npos ? 0
                                       : std::atoi(std::string(s.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (digits == "0") d.exp = 0;
  d.digits = digits.empty() ? "0" : digits;
  return d;
}

// Precision (significand bits) and minimum normal exponent of 16-bit kinds.
void Params16(FloatKind kind, int* p, int* emin) {
  if (kind == FloatKind::kFloat16) {
    *p = 11;
    *emin = -14;
  } else {
    *p = 8;
    *emin = -126;
  }
}

// Whether decimal `y` rounds to `x` (> 0) in a 16-bit kind: it lies in
// x's rounding interval, boundaries included when x's significand is even.
bool RoundsTo16(double x, double y, FloatKind kind) {
  int p, emin;
  Params16(kind, &p, &emin);
  int e2;
  const double m = std::frexp(x, &e2);  // x = m * 2^e2, m in [0.5, 1).
  const bool normal = e2 - 1 >= emin;
  const double ulp = normal ? std::ldexp(1.0, e2 - p) : std::ldexp(1.0, emin - p + 1);
  const double below = (normal && m == 0.5 && e2 - 1 > emin) ? ulp / 2 : ulp;
  const double lo = x - below / 2, hi = x + ulp / 2;
  const bool even = std::fmod(x / ulp, 2.0) == 0.0;
  return even ? (lo <= y && y <= hi) : (lo < y && y < hi);
}

// Shortest digits that round-trip in `kind`; `x` finite.
Decimal Shortest(double x, FloatKind kind) {
  if (x == 0) {
    Decimal d;
    d.negative = std::signbit(x);
    return d;
  }
  char buf[64];
  if (kind == FloatKind::kFloat64 || kind == FloatKind::kFloat32) {
    std::to_chars_result r =
        kind == FloatKind::kFloat64
            ? std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific)
            : std::to_chars(buf, buf + sizeof(buf), static_cast<float>(x),
                            std::chars_format::scientific);
    return ParseScientific(absl::string_view(buf, r.ptr - buf));
  }
  const double ax = std::fabs(x);
  for (int digits = 0; digits < 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*e", digits, ax);
    if (RoundsTo16(ax, std::strtod(buf, nullptr), kind)) break;
  }
  Decimal d = ParseScientific(buf);
  d.negative = std::signbit(x);
  return d;
}

// `x` rounded (exactly, by printf) to `digits` after the point, %e style.
Decimal RoundedScientific(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*e", digits, x);
  return ParseScientific(buf);
}

// Integer and fractional digits of a Decimal in positional form.
void Positional(const Decimal& d, std::string* int_part, std::string* frac) {
  const int n = static_cast<int>(d.digits.size());
  if (d.exp >= 0) {
    if (d.exp + 1 >= n) {
      *int_part = d.digits + std::string(d.exp + 1 - n, '0');
      frac->clear();
    } else {
      *int_part = d.digits.substr(0, d.exp + 1);
      *frac = d.digits.substr(d.exp + 1);
    }
  } else {
    *int_part = "0";
    *frac = std::string(-d.exp - 1, '0') + d.digits;
  }
  if (d.negative) int_part->insert(0, "-");
}

// numpy dragon4_positional(unique, precision 8, trim '.') split at the point.
void PositionalParts(double x, FloatKind kind, std::string* int_part, std::string* frac) {
  Decimal d = Shortest(x, kind);
  const int nfrac = std::max(0, static_cast<int>(d.digits.size()) - 1 - d.exp);
  if (nfrac > kPrecision) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", kPrecision, x);
    std::string s = buf;
    const size_t dot = s.find('.');
    *int_part = s.substr(0, dot);
    *frac = s.substr(dot + 1);
    while (!frac->empty() && frac->back() == '0') frac->pop_back();
    return;
  }
  if (d.exp >= static_cast<int>(d.digits.size())) {
    // Integer digits are printed exactly (numpy arrays show float16 9992
    // as "9992.", not the shortest "9990.").
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.0f", x);
    *int_part = buf;
    frac->clear();
    return;
  }
  Positional(d, int_part, frac);
}

// numpy dragon4_scientific(unique, precision 8, trim '.') parts.
void ScientificParts(double x, FloatKind kind, std::string* int_part, std::string* frac,
                     int* exp) {
  Decimal d = Shortest(x, kind);
  if (static_cast<int>(d.digits.size()) - 1 > kPrecision)
    d = RoundedScientific(x, kPrecision);
  *int_part = (d.negative ? "-" : "") + d.digits.substr(0, 1);
  *frac = d.digits.substr(1);
  *exp = d.exp;
}

std::string ExpText(int exp, int min_digits) {
  std::string digits = absl::StrCat(std::abs(exp));
  if (static_cast<int>(digits.size()) < min_digits) {
    digits.insert(0, min_digits - digits.size(), '0');
  }
  return absl::StrCat(exp < 0 ? "-" : "+", digits);
}

std::string PadLeft(absl::string_view s, size_t width) {
  return s.size() >= width ? std::string(s)
                           : absl::StrCat(std::string(width - s.size(), ' '), s);
}

}  // namespace

double HalfToDouble(uint16_t bits) {
  const int sign = bits >> 15, exp = (bits >> 10) & 0x1F, mant = bits & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(static_cast<double>(mant), -24);
  } else if (exp == 31) {
    v = mant == 0 ? INFINITY : NAN;
  } else {
    v = std::ldexp(static_cast<double>(mant + 1024), exp - 25);
  }
  return sign ? -v : v;
}

double BFloat16ToDouble(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}

std::string PyFloatRepr(double value, FloatKind kind) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  const Decimal d = Shortest(value, kind);
  if (d.exp >= -4 && d.exp < 16) {
    std::string ip, fp;
    Positional(d, &ip, &fp);
    return absl::StrCat(ip, ".", fp.empty() ? "0" : fp);
  }
  std::string mant = d.digits.substr(0, 1);
  if (d.digits.size() > 1) absl::StrAppend(&mant, ".", d.digits.substr(1));
  return absl::StrCat(d.negative ? "-" : "", mant, "e", ExpText(d.exp, 2));
}

FloatColumn::FloatColumn(const std::vector<double>& values, FloatKind kind)
    : kind_(kind) {
  double max_val = 0, min_val = INFINITY;
  bool any_finite = false, any_nonfinite = false, neginf = false;
  for (double v : values) {
    if (!std::isfinite(v)) {
      any_nonfinite = true;
      neginf |= std::isinf(v) && v < 0;
      continue;
    }
    any_finite = true;
    if (v != 0) {
      max_val = std::max(max_val, std::fabs(v));
      min_val = std::min(min_val, std::fabs(v));
    }
  }
  if (min_val != INFINITY) {
    exp_ = max_val >= 1e8 || min_val < 1e-4 || max_val / min_val > 1000.0;
  }
  if (any_finite) {
    for (double v : values) {
      if (!std::isfinite(v)) continue;
      std::string ip, fp;
      if (exp_) {
        int e;
        ScientificParts(v, kind_, &ip, &fp, &e);
        exp_size_ = std::max<int>(exp_size_, ExpText(e, 2).size() - 1);
      } else {
        PositionalParts(v, kind_, &ip, &fp);
      }
      pad_left_ = std::max<int>(pad_left_, ip.size());
      precision_ = std::max<int>(precision_, fp.size());
    }
    pad_right_ = exp_ ? exp_size_ + 2 + precision_ : precision_;
  }
  if (any_nonfinite) {
    const int offset = pad_right_ + 1;
    pad_left_ = std::max({pad_left_, 3 - offset, 3 + (neginf ? 1 : 0) - offset});
  }
}

std::string FloatColumn::operator()(double v) const {
  if (!std::isfinite(v)) {
    const char* t = std::isnan(v) ? "nan" : v < 0 ? "-inf" : "inf";
    return PadLeft(t, pad_left_ + pad_right_ + 1);
  }
  std::string ip, fp;
  if (exp_) {
    // numpy prints min_digits = precision digits: past the shortest
    // repr, further digits of the exact value, rounded at the last.
    int e;
    const Decimal d = RoundedScientific(v, precision_);
    ip = (d.negative ? "-" : "") + d.digits.substr(0, 1);
    fp = d.digits.substr(1);
    e = d.exp;
    fp.append(precision_ - fp.size(), '0');
    return absl::StrCat(PadLeft(ip, pad_left_), ".", fp, "e", ExpText(e, exp_size_));
  }
  PositionalParts(v, kind_, &ip, &fp);
  fp.append(precision_ - fp.size(), ' ');
  return absl::StrCat(PadLeft(ip, pad_left_), ".", fp);
}

}  // namespace format
}  // namespace meshckpt
