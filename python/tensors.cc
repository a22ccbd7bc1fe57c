// Communicators and tensors from Python objects, checked before any collective.
#include "meshckpt/python/tensors.h"

#include <pybind11/stl.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/python/arrays.h"
#include "meshckpt/python/errors.h"

namespace meshckpt::python {

namespace py = pybind11;

std::unique_ptr<Communicator> MakeCommunicator(py::handle comm) {
  if (comm.is_none()) return SerialCommunicator();
  if (!py::hasattr(comm, "py2f")) {
    Check(absl::InvalidArgumentError(absl::StrCat(
        "comm must be an mpi4py communicator (or None for one process), got ",
        py::cast<std::string>(py::str(comm.get_type().attr("__name__"))))));
  }
  const int handle = py::cast<int>(comm.attr("py2f")());
  IoScope io;
  return Unwrap(MpiCommunicator::FromFortranHandle(handle));
}

namespace {

absl::StatusOr<Layout> ToLayout(py::handle obj) {
  if (py::isinstance<py::str>(obj)) return Layout::FromString(py::cast<std::string>(obj));
  if (py::isinstance<Layout>(obj)) return py::cast<Layout>(obj);
  return absl::InvalidArgumentError(
      absl::StrCat("layout must be a meshckpt.Layout or its string, got ",
                   py::cast<std::string>(py::str(obj.get_type().attr("__name__")))));
}

// One tensor's fields, whatever form it was given in.
absl::Status Fields(py::handle t, py::object* key, py::object* shape, py::object* layout,
                    py::object* arrays, py::object* dtype) {
  if (py::hasattr(t, "key") && py::hasattr(t, "arrays")) {
    *key = t.attr("key");
    *shape = t.attr("shape");
    *layout = t.attr("layout");
    *arrays = t.attr("arrays");
    *dtype = py::getattr(t, "dtype", py::none());
    return absl::OkStatus();
  }
  if (py::isinstance<py::tuple>(t) || py::isinstance<py::list>(t)) {
    auto seq = py::reinterpret_borrow<py::sequence>(t);
    if (seq.size() == 4 || seq.size() == 5) {
      *key = seq[0];
      *shape = seq[1];
      *layout = seq[2];
      *arrays = seq[3];
      *dtype = seq.size() == 5 ? py::object(seq[4]) : py::object(py::none());
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      "a tensor must be a meshckpt.Tensor or a (key, shape, layout, arrays[, dtype]) "
      "tuple");
}

absl::Status ParseOne(py::handle obj, bool writeable, int rank, int size, PyTensor* t) {
  py::object key, shape, layout, arrays, dtype;
  if (absl::Status s = Fields(obj, &key, &shape, &layout, &arrays, &dtype); !s.ok())
    return s;
  t->key = py::cast<std::string>(key);
  const std::string what = absl::StrCat("tensor '", t->key, "' on rank ", rank);
  auto prefixed = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  };
  t->shape = py::cast<std::vector<int64_t>>(shape);
  absl::StatusOr<Layout> l = ToLayout(layout);
  if (!l.ok()) return prefixed(l.status());
  t->layout = *std::move(l);
  const Mesh& mesh = t->layout->mesh();
  if (mesh.rank() != rank || mesh.num_ranks() != size) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": the layout's mesh is rank ", mesh.rank(), "'s view of ",
        mesh.num_ranks(), " ranks, but the communicator has ", size,
        " ranks (make the Mesh with comm=, or from its string on each rank)"));
  }
  absl::StatusOr<ShardMap> map = ShardMap::Create(*t->layout, t->shape);
  if (!map.ok()) return prefixed(map.status());
  t->devices = mesh.local_device_ids();
  if (!py::isinstance<py::sequence>(arrays) || py::isinstance<py::str>(arrays) ||
      py::isinstance<py::array>(arrays)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": arrays must be a list with one numpy array per local device"));
  }
  auto list = py::reinterpret_borrow<py::sequence>(arrays);
  if (list.size() != t->devices.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", list.size(), " arrays given, but this rank has ",
                     t->devices.size(), " devices of the mesh (one array each)"));
  }
  if (!dtype.is_none()) {
    absl::StatusOr<DType> d = ParseDType(dtype);
    if (!d.ok()) return prefixed(d.status());
    t->dtype = *d;
  } else if (list.size() > 0 && py::isinstance<py::array>(list[0])) {
    absl::StatusOr<DType> d = DTypeOfArray(py::reinterpret_borrow<py::array>(list[0]));
    if (!d.ok()) return prefixed(d.status());
    t->dtype = *d;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const Box box = map->DeviceBox(t->devices[i]);
    absl::StatusOr<py::array> a =
        CheckArray(list[i], t->dtype, box.shape(), writeable,
                   absl::StrCat(what, ": array ", i, " (device ", t->devices[i], ")"));
    if (!a.ok()) return a.status();
    t->arrays.push_back(*std::move(a));
  }
  if (t->dtype != DType::kString) return absl::OkStatus();
  for (size_t i = 0; i < t->arrays.size(); ++i) {
    const py::array& a = t->arrays[i];
    std::vector<std::string>& out =
        t->strings.emplace_back(static_cast<size_t>(a.size()));
    if (writeable) continue;
    auto* const* slots = static_cast<PyObject* const*>(a.data());
    for (py::ssize_t j = 0; j < a.size(); ++j) {
      py::handle e(slots[j]);
      if (PyBytes_Check(e.ptr())) {
        out[j] = py::cast<std::string>(py::reinterpret_borrow<py::bytes>(e));
      } else if (PyUnicode_Check(e.ptr())) {
        out[j] = py::cast<std::string>(e);  // UTF-8.
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": array ", i, " element ", j, " is ",
                         py::cast<std::string>(py::str(e.get_type().attr("__name__"))),
                         ", expected bytes or str"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseTensors(py::handle tensors, bool writeable, int rank, int size,
                          std::vector<PyTensor>* out) {
  try {
    if (py::isinstance<py::str>(tensors) || !py::isinstance<py::sequence>(tensors)) {
      return absl::InvalidArgumentError("tensors must be a list");
    }
    auto seq = py::reinterpret_borrow<py::sequence>(tensors);
    for (size_t i = 0; i < seq.size(); ++i) {
      PyTensor t;
      if (absl::Status s = ParseOne(seq[i], writeable, rank, size, &t); !s.ok()) return s;
      out->push_back(std::move(t));
    }
    return absl::OkStatus();
  } catch (py::error_already_set& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, ": bad tensor: ", e.what()));
  } catch (py::cast_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, ": bad tensor: ", e.what()));
  }
}

std::vector<void*> DevicePointers(PyTensor& t) {
  std::vector<void*> out;
  for (size_t i = 0; i < t.arrays.size(); ++i) {
    if (t.arrays[i].size() == 0) {
      out.push_back(nullptr);
    } else if (t.dtype == DType::kString) {
      out.push_back(t.strings[i].data());
    } else {
      // Checked writeable for restore; save only reads through it.
      out.push_back(const_cast<void*>(t.arrays[i].data()));
    }
  }
  return out;
}

void FillStrings(PyTensor& t) {
  for (size_t i = 0; i < t.arrays.size(); ++i) {
    auto** slots = static_cast<PyObject**>(t.arrays[i].mutable_data());
    for (size_t j = 0; j < t.strings[i].size(); ++j) {
      const std::string& s = t.strings[i][j];
      PyObject* b =
          PyBytes_FromStringAndSize(s.data(), static_cast<py::ssize_t>(s.size()));
      if (b == nullptr) throw py::error_already_set();
      Py_XDECREF(slots[j]);
      slots[j] = b;
    }
  }
}

}  // namespace meshckpt::python
