// numpy-like value printing for `meshckpt inspect` (see format.h). The
// array layout follows numpy's arrayprint._formatArray and the float columns
// its FloatingFormat (floatmode 'maxprec', precision 8), so output matches
// `print(np_array)` for the common cases.
#include "meshckpt/tools/format.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/tools/json_writer.h"

namespace meshckpt {
namespace format {
namespace {

std::string PadLeft(absl::string_view s, size_t width) {
  return s.size() >= width ? std::string(s)
                           : absl::StrCat(std::string(width - s.size(), ' '), s);
}

bool IsFloat(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
         t == DType::kBfloat16;
}
FloatKind KindOf(DType t) {
  switch (t) {
    case DType::kFloat32:
    case DType::kComplex64:
      return FloatKind::kFloat32;
    case DType::kFloat16:
      return FloatKind::kFloat16;
    case DType::kBfloat16:
      return FloatKind::kBFloat16;
    default:
      return FloatKind::kFloat64;
  }
}

template <typename T>
T Load(const TensorData& d, int64_t i) {
  T v;
  std::memcpy(&v, d.bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

// Element i as a double (float dtypes).
double FloatAt(const TensorData& d, int64_t i) {
  switch (d.dtype) {
    case DType::kFloat32:
      return Load<float>(d, i);
    case DType::kFloat16:
      return HalfToDouble(Load<uint16_t>(d, i));
    case DType::kBfloat16:
      return BFloat16ToDouble(Load<uint16_t>(d, i));
    default:
      return Load<double>(d, i);
  }
}

std::complex<double> ComplexAt(const TensorData& d, int64_t i) {
  if (d.dtype == DType::kComplex64) {
    std::complex<float> c = Load<std::complex<float>>(d, i);
    return {c.real(), c.imag()};
  }
  return Load<std::complex<double>>(d, i);
}

std::string IntText(const TensorData& d, int64_t i) {
  switch (d.dtype) {
    case DType::kInt8:
      return absl::StrCat(Load<int8_t>(d, i));
    case DType::kInt16:
      return absl::StrCat(Load<int16_t>(d, i));
    case DType::kInt32:
      return absl::StrCat(Load<int32_t>(d, i));
    case DType::kInt64:
      return absl::StrCat(Load<int64_t>(d, i));
    case DType::kUint8:
      return absl::StrCat(Load<uint8_t>(d, i));
    case DType::kUint16:
      return absl::StrCat(Load<uint16_t>(d, i));
    case DType::kUint32:
      return absl::StrCat(Load<uint32_t>(d, i));
    default:
      return absl::StrCat(Load<uint64_t>(d, i));
  }
}

// Python's complex repr, always parenthesised: "(1+2j)", "(1.5-0.25j)".
std::string ComplexText(std::complex<double> c, FloatKind kind) {
  auto part = [&](double v) {
    std::string s = PyFloatRepr(v, kind);
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s;
  };
  std::string im = part(std::fabs(c.imag()));
  const bool neg = std::signbit(c.imag()) && !std::isnan(c.imag());
  return absl::StrCat("(", part(c.real()), neg ? "-" : "+", im, "j)");
}

// Unpadded text of element i (rank-0 tensors and the padded columns).
std::string ScalarText(const TensorData& d, int64_t i) {
  if (d.dtype == DType::kString) return PyBytesRepr(d.strings[i]);
  if (d.dtype == DType::kBool) return d.bytes[i] ? "True" : "False";
  if (IsFloat(d.dtype)) return PyFloatRepr(FloatAt(d, i), KindOf(d.dtype));
  if (d.dtype == DType::kComplex64 || d.dtype == DType::kComplex128) {
    return ComplexText(ComplexAt(d, i), KindOf(d.dtype));
  }
  return IntText(d, i);
}

// Every element's text, padded as numpy pads a column.
std::vector<std::string> Words(const TensorData& d) {
  const int64_t n = d.num_elements();
  std::vector<std::string> words(n);
  if (IsFloat(d.dtype)) {
    std::vector<double> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = FloatAt(d, i);
    FloatColumn column(v, KindOf(d.dtype));
    for (int64_t i = 0; i < n; ++i) words[i] = column(v[i]);
    return words;
  }
  if (d.dtype == DType::kBool) {
    for (int64_t i = 0; i < n; ++i) words[i] = d.bytes[i] ? " True" : "False";
    return words;
  }
  size_t width = 0;
  for (int64_t i = 0; i < n; ++i) {
    words[i] = ScalarText(d, i);
    width = std::max(width, words[i].size());
  }
  if (d.dtype == DType::kString) return words;  // numpy pads no strings.
  for (std::string& w : words) w = PadLeft(w, width);
  return words;
}

// numpy's _formatArray over the displayed elements.
class ArrayPrinter {
 public:
  ArrayPrinter(std::vector<std::string> words, std::vector<int64_t> shape,
               std::vector<bool> elided, int64_t edge)
      : words_(std::move(words)),
        shape_(std::move(shape)),
        elided_(std::move(elided)),
        edge_(edge),
        strides_(shape_.size(), 1) {
    for (int d = static_cast<int>(shape_.size()) - 2; d >= 0; --d) {
      strides_[d] = strides_[d + 1] * shape_[d + 1];
    }
  }

  std::string Print(int linewidth) { return Recurse(0, 0, " ", linewidth); }

 private:
  static void ExtendLine(std::string* s, std::string* line, const std::string& word,
                         int width, const std::string& prefix) {
    bool wrap = static_cast<int>(line->size() + word.size()) > width;
    if (line->size() <= prefix.size()) wrap = false;
    if (wrap) {
      size_t end = line->find_last_not_of(' ');
      absl::StrAppend(s, line->substr(0, end == std::string::npos ? 0 : end + 1), "\n");
      *line = prefix;
    }
    absl::StrAppend(line, word);
  }

  std::string Recurse(int axis, int64_t offset, const std::string& hanging, int width) {
    const int ndim = static_cast<int>(shape_.size());
    if (axis == ndim) return words_[offset];
    const std::string next_hanging = hanging + " ";
    const int next_width = width - 1;
    const int64_t n = shape_[axis];
    const bool summary = elided_[axis];
    const int64_t leading = summary ? edge_ : 0;
    const int64_t trailing = summary ? edge_ : n;
    auto sub = [&](int64_t i) {
      return Recurse(axis + 1, offset + i * strides_[axis], next_hanging, next_width);
    };
    std::string s;
    if (ndim - axis == 1) {
      // Room for the closing bracket, as numpy (> 1.13) keeps it.
      const int elem_width = width - 1;
      std::string line = hanging;
      for (int64_t i = 0; i < leading; ++i) {
        ExtendLine(&s, &line, sub(i), elem_width, hanging);
        line += " ";
      }
      if (summary) {
        ExtendLine(&s, &line, "...", elem_width, hanging);
        line += " ";
      }
      for (int64_t i = trailing; i > 1; --i) {
        ExtendLine(&s, &line, sub(n - i), elem_width, hanging);
        line += " ";
      }
      ExtendLine(&s, &line, sub(n - 1), elem_width, hanging);
      s += line;
    } else {
      const std::string sep(ndim - axis - 1, '\n');
      for (int64_t i = 0; i < leading; ++i) absl::StrAppend(&s, hanging, sub(i), sep);
      if (summary) absl::StrAppend(&s, hanging, "...", sep);
      for (int64_t i = trailing; i > 1; --i)
        absl::StrAppend(&s, hanging, sub(n - i), sep);
      absl::StrAppend(&s, hanging, sub(n - 1));
    }
    return absl::StrCat("[", s.substr(hanging.size()), "]");
  }

  std::vector<std::string> words_;
  std::vector<int64_t> shape_;
  std::vector<bool> elided_;
  int64_t edge_;
  std::vector<int64_t> strides_;
};

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

void AppendJsonFloat(std::string* out, double v, FloatKind kind) {
  if (std::isnan(v)) {
    absl::StrAppend(out, "\"NaN\"");
  } else if (std::isinf(v)) {
    absl::StrAppend(out, v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
  } else {
    absl::StrAppend(out, PyFloatRepr(v, kind));
  }
}

void AppendJsonElement(std::string* out, const TensorData& d, int64_t i) {
  if (d.dtype == DType::kString) {
    absl::StrAppend(out, JsonQuoteLatin1(d.strings[i]));
  } else if (d.dtype == DType::kBool) {
    absl::StrAppend(out, d.bytes[i] ? "true" : "false");
  } else if (IsFloat(d.dtype)) {
    AppendJsonFloat(out, FloatAt(d, i), KindOf(d.dtype));
  } else if (d.dtype == DType::kComplex64 || d.dtype == DType::kComplex128) {
    const std::complex<double> c = ComplexAt(d, i);
    absl::StrAppend(out, "[");
    AppendJsonFloat(out, c.real(), KindOf(d.dtype));
    absl::StrAppend(out, ", ");
    AppendJsonFloat(out, c.imag(), KindOf(d.dtype));
    absl::StrAppend(out, "]");
  } else {
    absl::StrAppend(out, IntText(d, i));
  }
}

void AppendJsonArray(std::string* out, const TensorData& d, int axis, int64_t offset,
                     int64_t stride) {
  if (axis == static_cast<int>(d.shape.size())) {
    AppendJsonElement(out, d, offset);
    return;
  }
  const int64_t n = d.shape[axis];
  const int64_t inner = n == 0 ? 0 : stride / n;
  out->push_back('[');
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) absl::StrAppend(out, ", ");
    AppendJsonArray(out, d, axis + 1, offset + i * inner, inner);
  }
  out->push_back(']');
}

}  // namespace

std::string PyBytesRepr(absl::string_view bytes) {
  const bool has_single = bytes.find('\'') != absl::string_view::npos;
  const bool has_double = bytes.find('"') != absl::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out = absl::StrCat("b", std::string(1, quote));
  for (unsigned char c : bytes) {
    if (c == quote || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7F) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back(quote);
  return out;
}

bool IsSummarised(absl::Span<const int64_t> shape, const FormatOptions& options) {
  return options.threshold >= 0 && NumElements(shape) > options.threshold;
}

std::vector<std::vector<std::pair<int64_t, int64_t>>> DisplayedRanges(
    absl::Span<const int64_t> shape, const FormatOptions& options) {
  const bool summary = IsSummarised(shape, options);
  const int64_t e = std::max<int64_t>(options.edgeitems, 1);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> out;
  for (int64_t n : shape) {
    if (summary && n > 2 * e) {
      out.push_back({{0, e}, {n - e, n}});
    } else {
      out.push_back({{0, n}});
    }
  }
  return out;
}

std::vector<int64_t> DisplayedShape(absl::Span<const int64_t> shape,
                                    const FormatOptions& options) {
  std::vector<int64_t> out;
  for (const auto& ranges : DisplayedRanges(shape, options)) {
    int64_t n = 0;
    for (const auto& [b, e] : ranges) n += e - b;
    out.push_back(n);
  }
  return out;
}

TensorData GatherDisplayed(const TensorData& whole, const FormatOptions& options) {
  const auto ranges = DisplayedRanges(whole.shape, options);
  TensorData out;
  out.dtype = whole.dtype;
  out.shape = DisplayedShape(whole.shape, options);
  const int rank = static_cast<int>(whole.shape.size());
  // Full-tensor index of each displayed index, per dimension.
  std::vector<std::vector<int64_t>> picks(rank);
  for (int d = 0; d < rank; ++d) {
    for (const auto& [b, e] : ranges[d]) {
      for (int64_t i = b; i < e; ++i) picks[d].push_back(i);
    }
  }
  std::vector<int64_t> strides(rank, 1);
  for (int d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * whole.shape[d + 1];
  const int64_t n = out.num_elements();
  const int64_t esize = DTypeSize(whole.dtype);
  if (whole.dtype == DType::kString) {
    out.strings.reserve(n);
  } else {
    out.bytes.reserve(n * esize);
  }
  std::vector<int64_t> idx(rank, 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t src = 0;
    for (int d = 0; d < rank; ++d) src += picks[d][idx[d]] * strides[d];
    if (whole.dtype == DType::kString) {
      out.strings.push_back(whole.strings[src]);
    } else {
      out.bytes.insert(out.bytes.end(), whole.bytes.begin() + src * esize,
                       whole.bytes.begin() + (src + 1) * esize);
    }
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < out.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

absl::StatusOr<std::string> FormatTensor(const TensorData& values,
                                         absl::Span<const int64_t> full_shape,
                                         const FormatOptions& options) {
  const std::vector<int64_t> shown = DisplayedShape(full_shape, options);
  const bool is_whole = values.shape ==
                        std::vector<int64_t>(full_shape.begin(), full_shape.end());
  if (!is_whole && values.shape != shown) {
    return absl::InvalidArgumentError(
        absl::StrCat("values of shape [", absl::StrJoin(values.shape, ","),
                     "] are neither the tensor [", absl::StrJoin(full_shape, ","),
                     "] nor its displayed part [", absl::StrJoin(shown, ","), "]"));
  }
  const int64_t n = values.num_elements();
  const size_t want =
      values.dtype == DType::kString
          ? values.strings.size()
          : values.bytes.size() / std::max<int64_t>(DTypeSize(values.dtype), 1);
  if (static_cast<int64_t>(want) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("values hold ", want, " elements, shape [",
                     absl::StrJoin(values.shape, ","), "] needs ", n));
  }
  if (full_shape.empty()) return ScalarText(values, 0);
  if (NumElements(full_shape) == 0) return std::string("[]");
  TensorData compact;
  const TensorData* data = &values;
  if (is_whole && shown != values.shape) {
    compact = GatherDisplayed(values, options);
    data = &compact;
  }
  std::vector<bool> elided;
  for (size_t d = 0; d < full_shape.size(); ++d)
    elided.push_back(shown[d] != full_shape[d]);
  ArrayPrinter printer(Words(*data), data->shape, elided,
                       std::max<int64_t>(options.edgeitems, 1));
  return printer.Print(options.linewidth);
}

std::string JsonValues(const TensorData& values) {
  std::string out;
  AppendJsonArray(&out, values, 0, 0, values.num_elements());
  return out;
}

}  // namespace format
}  // namespace meshckpt