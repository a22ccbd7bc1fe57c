// `meshckpt diff A B`: which tensors differ between two checkpoints. Serial;
// compares tensor by tensor in slabs along dimension 0 of at most ~64 MiB
// per checkpoint, so memory stays bounded by two slabs whatever the model.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"
#include "meshckpt/tools/format.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "diff";
constexpr int64_t kSlabBytes = int64_t{64} << 20;

constexpr char kHelp[] =
    "Usage: meshckpt diff A B [--atol X] [--exit-code]\n"
    "\n"
    "Compares two checkpoints tensor by tensor and prints what differs:\n"
    "  only in A / only in B   keys present in one checkpoint only\n"
    "  dtype differs / shape differs\n"
    "  values differ           for tensors of equal dtype and shape: how many\n"
    "                          elements differ and, for numeric dtypes, the\n"
    "                          largest absolute difference (|a-b|; complex:\n"
    "                          modulus; a NaN against a number counts as inf,\n"
    "                          NaN against NaN as equal)\n"
    "Strings and bools are compared for equality (count only). Layouts and\n"
    "metadata are not compared: a resharded copy has no differences.\n"
    "Reads in slabs of about 64 MiB per checkpoint (bounded memory).\n"
    "\n"
    "A and B are checkpoint prefixes (or directories: their latest).\n"
    "Runs in one process; no mpirun needed.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"atol", cli::FlagKind::kValue, "X",
       "numeric elements differ only when |a-b| > X (default 0: any change)"},
      {"exit-code", cli::FlagKind::kBool, "",
       "exit with 1 when there are differences (0 otherwise)"},
  };
  return *flags;
}

struct Comparison {
  int64_t differing = 0;
  double max_abs = 0;
};

template <typename T>
T Load(const std::vector<char>& bytes, int64_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

double FloatValue(const TensorData& d, int64_t i) {
  switch (d.dtype) {
    case DType::kFloat32:
      return Load<float>(d.bytes, i);
    case DType::kFloat16:
      return format::HalfToDouble(Load<uint16_t>(d.bytes, i));
    case DType::kBfloat16:
      return format::BFloat16ToDouble(Load<uint16_t>(d.bytes, i));
    default:
      return Load<double>(d.bytes, i);
  }
}

// |a - b| exactly for 64-bit integers, then as a double.
template <typename T>
double IntDiff(T a, T b) {
  const uint64_t ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
  return static_cast<double>(a >= b ? ua - ub : ub - ua);
}

template <typename T>
void CompareInts(const TensorData& a, const TensorData& b, double atol, Comparison* c) {
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const T x = Load<T>(a.bytes, i), y = Load<T>(b.bytes, i);
    if (x == y) continue;
    const double d = IntDiff(x, y);
    c->max_abs = std::max(c->max_abs, d);
    if (d > atol) ++c->differing;
  }
}

void Record(double d, double atol, Comparison* c) {
  if (std::isnan(d)) d = INFINITY;
  c->max_abs = std::max(c->max_abs, d);
  if (d > atol) ++c->differing;
}

void CompareSlab(const TensorData& a, const TensorData& b, double atol, Comparison* c) {
  const int64_t n = a.num_elements();
  switch (a.dtype) {
    case DType::kString:
      for (int64_t i = 0; i < n; ++i) c->differing += a.strings[i] != b.strings[i];
      return;
    case DType::kBool:
      for (int64_t i = 0; i < n; ++i)
        c->differing += (a.bytes[i] != 0) != (b.bytes[i] != 0);
      return;
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat16:
    case DType::kBfloat16:
      for (int64_t i = 0; i < n; ++i) {
        const double x = FloatValue(a, i), y = FloatValue(b, i);
        if (x == y || (std::isnan(x) && std::isnan(y))) continue;
        Record(std::fabs(x - y), atol, c);
      }
      return;
    case DType::kComplex64:
      for (int64_t i = 0; i < n; ++i) {
        const auto x = Load<std::complex<float>>(a.bytes, i);
        const auto y = Load<std::complex<float>>(b.bytes, i);
        if (x == y) continue;
        Record(std::abs(std::complex<double>(x) - std::complex<double>(y)), atol, c);
      }
      return;
    case DType::kComplex128:
      for (int64_t i = 0; i < n; ++i) {
        const auto x = Load<std::complex<double>>(a.bytes, i);
        const auto y = Load<std::complex<double>>(b.bytes, i);
        if (x == y) continue;
        Record(std::abs(x - y), atol, c);
      }
      return;
    case DType::kInt8:
      return CompareInts<int8_t>(a, b, atol, c);
    case DType::kInt16:
      return CompareInts<int16_t>(a, b, atol, c);
    case DType::kInt32:
      return CompareInts<int32_t>(a, b, atol, c);
    case DType::kInt64:
      return CompareInts<int64_t>(a, b, atol, c);
    case DType::kUint8:
      return CompareInts<uint8_t>(a, b, atol, c);
    case DType::kUint16:
      return CompareInts<uint16_t>(a, b, atol, c);
    case DType::kUint32:
      return CompareInts<uint32_t>(a, b, atol, c);
    case DType::kUint64:
      return CompareInts<uint64_t>(a, b, atol, c);
  }
}

absl::StatusOr<Comparison> CompareTensor(const CheckpointReader& ra,
                                         const CheckpointReader& rb,
                                         const VariableInfo& v, double atol) {
  Comparison c;
  if (v.shape.empty()) {
    MESHCKPT_ASSIGN_OR_RETURN(TensorData a, ra.ReadBox(v.key, Box()));
    MESHCKPT_ASSIGN_OR_RETURN(TensorData b, rb.ReadBox(v.key, Box()));
    CompareSlab(a, b, atol, &c);
    return c;
  }
  int64_t row_bytes = std::max<int64_t>(DTypeSize(v.dtype), 32);  // Strings: a guess.
  for (size_t d = 1; d < v.shape.size(); ++d)
    row_bytes *= std::max<int64_t>(v.shape[d], 1);
  const int64_t rows = std::max<int64_t>(kSlabBytes / std::max<int64_t>(row_bytes, 1), 1);
  for (int64_t r = 0; r < v.shape[0]; r += rows) {
    std::vector<int64_t> origin(v.shape.size(), 0), shape = v.shape;
    origin[0] = r;
    shape[0] = std::min(rows, v.shape[0] - r);
    MESHCKPT_ASSIGN_OR_RETURN(Box box, Box::Create(origin, shape));
    MESHCKPT_ASSIGN_OR_RETURN(TensorData a, ra.ReadBox(v.key, box));
    MESHCKPT_ASSIGN_OR_RETURN(TensorData b, rb.ReadBox(v.key, box));
    CompareSlab(a, b, atol, &c);
  }
  return c;
}

bool IsNumeric(DType t) { return t != DType::kString && t != DType::kBool; }

std::string Describe(const VariableInfo& v) {
  return absl::StrCat(DTypeName(v.dtype), " ", cli::ShapeText(v.shape));
}

}  // namespace

int RunDiff(const std::vector<std::string>& args) {
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  if (!a.ok()) return cli::UsageError(kCmd, a.status().message());
  if (a->help) {
    std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  if (a->positional.size() != 2)
    return cli::UsageError(kCmd, "want two checkpoints A and B");
  double atol = 0;
  if (a->Has("atol")) {
    absl::StatusOr<double> v = cli::ParseNonNegativeDouble("atol", a->Value("atol"));
    if (!v.ok()) return cli::UsageError(kCmd, v.status().message());
    atol = *v;
  }
  const std::string pa = cli::ResolvePrefix(a->positional[0]);
  const std::string pb = cli::ResolvePrefix(a->positional[1]);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> ra = CheckpointReader::Open(pa);
  if (!ra.ok()) return cli::ReportError(kCmd, ra.status());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> rb = CheckpointReader::Open(pb);
  if (!rb.ok()) return cli::ReportError(kCmd, rb.status());

  std::map<std::string, VariableInfo> in_a, in_b;
  for (VariableInfo& v : (*ra)->ListVariables()) in_a.emplace(v.key, v);
  for (VariableInfo& v : (*rb)->ListVariables()) in_b.emplace(v.key, v);
  int differences = 0, compared = 0;
  for (const auto& [key, v] : in_a) {
    if (!in_b.count(key)) {
      std::cout << "only in A: " << key << " (" << Describe(v) << ")\n";
      ++differences;
    }
  }
  for (const auto& [key, v] : in_b) {
    if (!in_a.count(key)) {
      std::cout << "only in B: " << key << " (" << Describe(v) << ")\n";
      ++differences;
    }
  }
  const bool tty = cli::StderrIsTerminal();
  for (const auto& [key, va] : in_a) {
    auto it = in_b.find(key);
    if (it == in_b.end()) continue;
    const VariableInfo& vb = it->second;
    if (va.dtype != vb.dtype) {
      std::cout << "dtype differs: " << key << ": " << DTypeName(va.dtype) << " in A, "
                << DTypeName(vb.dtype) << " in B\n";
      ++differences;
      continue;
    }
    if (va.shape != vb.shape) {
      std::cout << "shape differs: " << key << ": " << cli::ShapeText(va.shape)
                << " in A, " << cli::ShapeText(vb.shape) << " in B\n";
      ++differences;
      continue;
    }
    if (tty)
      std::cerr << "\rcomparing " << compared + 1 << "/" << in_a.size() << "\x1b[K";
    absl::StatusOr<Comparison> c = CompareTensor(**ra, **rb, va, atol);
    if (tty) std::cerr << "\r\x1b[K";
    if (!c.ok()) return cli::ReportError(kCmd, c.status());
    ++compared;
    if (c->differing == 0) continue;
    ++differences;
    std::cout << "values differ: " << key << ": " << c->differing << " of "
              << Box::FromShape(va.shape).num_elements() << " elements differ";
    if (IsNumeric(va.dtype)) {
      std::cout << ", max abs diff "
                << format::PyFloatRepr(c->max_abs, format::FloatKind::kFloat64);
    }
    std::cout << "\n";
  }
  if (differences == 0) {
    std::cout << "no differences (" << compared << " tensors compared)\n";
  } else {
    std::cout << differences << " difference(s); " << compared
              << " tensors of equal dtype and shape compared\n";
  }
  return differences > 0 && a->Bool("exit-code") ? cli::kExitCheckFailed : cli::kExitOk;
}

}  // namespace meshckpt
