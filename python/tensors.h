// What save, restore and the manager take from Python: a communicator (an
// mpi4py communicator, or None for one process) and tensors (key, shape,
// layout, one numpy array per local device, dtype), checked locally so that
// every rank can agree on any error before a collective call.
#ifndef MESHCKPT_PYTHON_TENSORS_H_
#define MESHCKPT_PYTHON_TENSORS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt::python {

// A duplicate of mpi4py communicator `comm` (through its Fortran handle,
// comm.py2f(), so no MPI header is needed here), or a serial communicator
// for None. Collective over `comm`; throws on failure.
std::unique_ptr<Communicator> MakeCommunicator(pybind11::handle comm);

// A tensor given from Python, checked.
struct PyTensor {
  std::string key;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::optional<Layout> layout;  // Always set once parsed.
  std::vector<int64_t> devices;  // Local device ids, in mesh order.
  // One per local device, checked against its box; held for the call.
  std::vector<pybind11::array> arrays;
  // kString: the elements of each device, copied (save) or to fill (restore).
  std::vector<std::vector<std::string>> strings;
};

// Parses and checks `tensors` (a sequence of meshckpt.Tensor or (key, shape,
// layout, arrays[, dtype]) tuples) for rank `rank` of `size`; `writeable`
// for restore. Any problem, including a Python error raised while reading
// the objects, is an InvalidArgument status naming the tensor.
absl::Status ParseTensors(pybind11::handle tensors, bool writeable, int rank, int size,
                          std::vector<PyTensor>* out);

// Pointers to each device's buffer for the engine; null for empty boxes.
std::vector<void*> DevicePointers(PyTensor& t);

// After a restore of a string tensor: its strings into the object arrays.
void FillStrings(PyTensor& t);

}  // namespace meshckpt::python

#endif  // MESHCKPT_PYTHON_TENSORS_H_
