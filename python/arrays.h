// numpy arrays and meshckpt dtypes: the mapping between them, tensors read
// into numpy, and the checks a caller's array must pass before the engine
// reads or writes its memory.
#ifndef MESHCKPT_PYTHON_ARRAYS_H_
#define MESHCKPT_PYTHON_ARRAYS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"

namespace meshckpt::python {

// The numpy dtype holding a DType's elements: bfloat16 as uint16 (its bit
// pattern), string as object (bytes elements).
pybind11::dtype NumpyDType(DType dtype);
// A DType from a name ("float32", "bfloat16", ...), a numpy dtype or
// anything numpy.dtype() accepts. InvalidArgument otherwise.
absl::StatusOr<DType> ParseDType(pybind11::handle dtype);
// The DType of a numpy array's elements (object or bytes -> string).
absl::StatusOr<DType> DTypeOfArray(const pybind11::array& a);

// A tensor read, as numpy: the bytes are moved, not copied, into the array
// (strings become bytes objects). bfloat16 becomes float32 unless `raw`.
pybind11::array ToNumpy(TensorData data, bool raw);

// Checks that `obj` is a numpy array the engine may use as one device's
// buffer: `dtype`'s numpy dtype, C-contiguous, aligned, of `shape`, and
// writeable when `writeable`. `what` names it in the error.
absl::StatusOr<pybind11::array> CheckArray(pybind11::handle obj, DType dtype,
                                           const std::vector<int64_t>& shape,
                                           bool writeable, const std::string& what);

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace meshckpt::python

#endif  // MESHCKPT_PYTHON_ARRAYS_H_
