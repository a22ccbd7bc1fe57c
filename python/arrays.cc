// numpy <-> meshckpt dtypes, tensors read into numpy, checks of callers' arrays.
#include "meshckpt/python/arrays.h"

#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace meshckpt::python {

namespace py = pybind11;

namespace {

py::dtype NumpyDTypeNamed(absl::string_view name) {
  return py::dtype::from_args(py::str(std::string(name)));
}

bool NativeOrder(const py::dtype& dt) {
  const std::string order = py::str(dt.attr("byteorder"));
  // '=' native, '|' not applicable (1 byte, object); this is little-endian.
  return order == "=" || order == "|" || order == "<";
}

absl::StatusOr<DType> DTypeOfNumpy(const py::dtype& dt) {
  const char kind = dt.kind();
  const int64_t size = static_cast<int64_t>(dt.itemsize());
  const std::string name = py::str(py::handle(dt));
  if (kind == 'O' || kind == 'S') return DType::kString;
  if (!NativeOrder(dt)) {
    return absl::InvalidArgumentError(
        absl::StrCat("numpy dtype ", name, " is not in native byte order"));
  }
  switch (kind) {
    case 'b':
      return DType::kBool;
    case 'f':
      if (size == 2) return DType::kFloat16;
      if (size == 4) return DType::kFloat32;
      if (size == 8) return DType::kFloat64;
      break;
    case 'i':
      if (size == 1) return DType::kInt8;
      if (size == 2) return DType::kInt16;
      if (size == 4) return DType::kInt32;
      if (size == 8) return DType::kInt64;
      break;
    case 'u':
      if (size == 1) return DType::kUint8;
      if (size == 2) return DType::kUint16;
      if (size == 4) return DType::kUint32;
      if (size == 8) return DType::kUint64;
      break;
    case 'c':
      if (size == 8) return DType::kComplex64;
      if (size == 16) return DType::kComplex128;
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("numpy dtype ", name, " has no meshckpt dtype"));
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), shape.size() == 1 ? ",)" : ")");
}

py::dtype NumpyDType(DType dtype) {
  if (dtype == DType::kBfloat16) return NumpyDTypeNamed("uint16");
  if (dtype == DType::kString) return NumpyDTypeNamed("object");
  return NumpyDTypeNamed(DTypeName(dtype));
}

absl::StatusOr<DType> ParseDType(py::handle dtype) {
  if (py::isinstance<py::str>(dtype)) {
    absl::StatusOr<DType> named = DTypeFromName(py::cast<std::string>(dtype));
    if (named.ok()) return named;
  }
  try {
    return DTypeOfNumpy(py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype)));
  } catch (py::error_already_set& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a dtype: ", py::cast<std::string>(py::repr(dtype))));
  }
}

absl::StatusOr<DType> DTypeOfArray(const py::array& a) { return DTypeOfNumpy(a.dtype()); }

py::array ToNumpy(TensorData data, bool raw) {
  std::vector<py::ssize_t> shape(data.shape.begin(), data.shape.end());
  const int64_t n = data.num_elements();
  if (data.dtype == DType::kString) {
    py::array out(NumpyDTypeNamed("object"), shape);
    auto** slots = static_cast<PyObject**>(out.mutable_data());
    for (int64_t i = 0; i < n; ++i) {
      const std::string& s = data.strings[static_cast<size_t>(i)];
      PyObject* b =
          PyBytes_FromStringAndSize(s.data(), static_cast<py::ssize_t>(s.size()));
      if (b == nullptr) throw py::error_already_set();
      Py_XDECREF(slots[i]);
      slots[i] = b;
    }
    return out;
  }
  if (data.dtype == DType::kBfloat16 && !raw) {
    // bfloat16 is the upper half of a float32: widening is exact.
    py::array out(NumpyDTypeNamed("float32"), shape);
    auto* dst = static_cast<float*>(out.mutable_data());
    for (int64_t i = 0; i < n; ++i) {
      uint16_t half;
      std::memcpy(&half, data.bytes.data() + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(half) << 16;
      std::memcpy(&dst[i], &bits, 4);
    }
    return out;
  }
  // The array takes over the bytes read: no copy. std::vector<char> storage
  // comes from operator new, aligned for every element type.
  if (n == 0) return py::array(NumpyDType(data.dtype), shape);
  auto owned = std::make_unique<std::vector<char>>(std::move(data.bytes));
  py::capsule base(owned.get(),
                   [](void* p) { delete static_cast<std::vector<char>*>(p); });
  void* ptr = owned.release()->data();  // The capsule owns it now.
  return py::array(NumpyDType(data.dtype), shape, ptr, base);
}

absl::StatusOr<py::array> CheckArray(py::handle obj, DType dtype,
                                     const std::vector<int64_t>& shape, bool writeable,
                                     const std::string& what) {
  if (!py::isinstance<py::array>(obj)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a numpy array, got ",
                     py::cast<std::string>(py::str(obj.get_type().attr("__name__")))));
  }
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype want = NumpyDType(dtype);
  if (!a.dtype().equal(want)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": dtype ", py::cast<std::string>(py::str(py::handle(a.dtype()))),
        ", expected ", py::cast<std::string>(py::str(py::handle(want))),
        dtype == DType::kBfloat16 ? " (bfloat16 tensors take their uint16 bit patterns)"
                                  : ""));
  }
  std::vector<int64_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": shape ", ShapeString(got),
                                                   ", expected ", ShapeString(shape)));
  }
  const int flags = a.flags();
  if (!(flags & py::array::c_style)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": not C-contiguous (pass numpy.ascontiguousarray(a) to save; restore "
        "fills arrays in place, so it needs a contiguous one)"));
  }
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not aligned"));
  }
  if (writeable && !a.writeable()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": read-only, cannot restore into it"));
  }
  return a;
}

}  // namespace meshckpt::python
