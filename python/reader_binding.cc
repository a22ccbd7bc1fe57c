// meshckpt._meshckpt._Reader: CheckpointReader for Python (no MPI needed).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/python/arrays.h"
#include "meshckpt/python/bindings.h"
#include "meshckpt/python/errors.h"

namespace meshckpt::python {

namespace py = pybind11;

namespace {

// Shares the reader (IoShared): close() drops this object's reference, so
// the files close at once unless a call on another thread still reads.
class PyReader {
 public:
  static std::unique_ptr<PyReader> Open(const std::string& path, bool verify_checksums) {
    std::unique_ptr<CheckpointReader> r;
    {
      IoScope io;
      r = Unwrap(CheckpointReader::Open(path, verify_checksums));
    }
    return std::make_unique<PyReader>(IoShared(std::move(r)));
  }
  explicit PyReader(std::shared_ptr<CheckpointReader> r) : reader_(std::move(r)) {}

  void Close() { reader_.reset(); }

  // The reader, for a call to hold (with the GIL) across its IoScope.
  std::shared_ptr<CheckpointReader> get() const {
    if (reader_ == nullptr) {
      Check(absl::FailedPreconditionError("the checkpoint reader is closed"));
    }
    return reader_;
  }

  VariableInfo Info(const std::string& key) const {
    return Unwrap(get()->GetVariableInfo(key), /*missing_key=*/true);
  }

  py::array Read(const std::string& key, std::optional<std::vector<int64_t>> origin,
                 std::optional<std::vector<int64_t>> shape, bool raw) const {
    std::shared_ptr<CheckpointReader> r = get();
    if (!r->HasTensor(key)) {
      Check(absl::NotFoundError(
                absl::StrCat("no tensor '", key, "' in checkpoint ", r->prefix())),
            /*missing_key=*/true);
    }
    absl::StatusOr<TensorData> data;
    if (origin.has_value() != shape.has_value()) {
      throw py::value_error("read: give both origin and shape of the box, or neither");
    }
    if (origin.has_value()) {
      Box box = Unwrap(Box::Create(*origin, *shape));
      IoScope io;
      data = r->ReadBox(key, box);
    } else {
      IoScope io;
      data = r->ReadTensor(key);
    }
    return ToNumpy(Unwrap(std::move(data)), raw);
  }

  py::object ReadValue(const std::string& key) const {
    std::shared_ptr<CheckpointReader> r = get();
    absl::StatusOr<ScalarValue> v;
    {
      IoScope io;
      v = r->ReadValue(key);
    }
    ScalarValue value = Unwrap(std::move(v), /*missing_key=*/true);
    if (auto* i = std::get_if<int64_t>(&value)) return py::int_(*i);
    if (auto* d = std::get_if<double>(&value)) return py::float_(*d);
    return py::bytes(std::get<std::string>(value));
  }

  std::vector<std::string> Verify() const {
    std::shared_ptr<CheckpointReader> r = get();
    absl::StatusOr<std::vector<std::string>> problems;
    {
      IoScope io;
      problems = r->VerifyAll();
    }
    return Unwrap(std::move(problems));
  }

 private:
  std::shared_ptr<CheckpointReader> reader_;
};

py::object Text(const std::string& s) {
  PyObject* u =
      PyUnicode_DecodeUTF8(s.data(), static_cast<py::ssize_t>(s.size()), nullptr);
  if (u != nullptr) return py::reinterpret_steal<py::object>(u);
  PyErr_Clear();
  return py::bytes(s);
}

}  // namespace

void BindReader(py::module_& m) {
  py::class_<VariableInfo>(
      m, "VariableInfo", "One tensor of a checkpoint: key, dtype (name), shape, layout.")
      .def_readonly("key", &VariableInfo::key)
      .def_property_readonly(
          "dtype", [](const VariableInfo& v) { return std::string(DTypeName(v.dtype)); })
      .def_property_readonly("shape",
                             [](const VariableInfo& v) {
                               py::tuple t(v.shape.size());
                               for (size_t i = 0; i < v.shape.size(); ++i)
                                 t[i] = v.shape[i];
                               return t;
                             })
      .def_readonly("layout", &VariableInfo::layout)
      .def_readonly("dataset", &VariableInfo::dataset)
      .def_readonly("nbytes", &VariableInfo::bytes)
      .def_readonly("num_chunks", &VariableInfo::num_chunks)
      .def("__repr__", [](const VariableInfo& v) {
        return absl::StrCat("VariableInfo(key='", v.key, "', dtype=", DTypeName(v.dtype),
                            ", shape=", ShapeString(v.shape), ")");
      });

  py::class_<PyReader>(m, "_Reader")
      .def_static("open", &PyReader::Open, py::arg("path"),
                  py::arg("verify_checksums") = true)
      .def("close", &PyReader::Close)
      .def("keys",
           [](const PyReader& r) {
             std::vector<std::string> keys;
             for (const VariableInfo& v : r.get()->ListVariables()) keys.push_back(v.key);
             return keys;
           })
      .def("variables", [](const PyReader& r) { return r.get()->ListVariables(); })
      .def("has",
           [](const PyReader& r, const std::string& k) { return r.get()->HasTensor(k); })
      .def("info", &PyReader::Info)
      .def("read", &PyReader::Read, py::arg("key"), py::arg("origin") = py::none(),
           py::arg("shape") = py::none(), py::arg("raw") = false)
      .def("read_value", &PyReader::ReadValue)
      .def("verify", &PyReader::Verify)
      .def_property_readonly("prefix",
                             [](const PyReader& r) { return r.get()->prefix(); })
      .def_property_readonly(
          "mesh", [](const PyReader& r) { return r.get()->index().mesh.ToString(); })
      .def_property_readonly("step",
                             [](const PyReader& r) { return r.get()->index().step; })
      .def_property_readonly(
          "save_counter", [](const PyReader& r) { return r.get()->index().save_counter; })
      .def_property_readonly("timestamp",
                             [](const PyReader& r) { return r.get()->index().timestamp; })
      .def_property_readonly(
          "library_version",
          [](const PyReader& r) { return r.get()->index().library_version; })
      .def_property_readonly("metadata", [](const PyReader& r) {
        py::dict d;
        std::shared_ptr<CheckpointReader> reader = r.get();
        for (const auto& [k, v] : reader->index().user_metadata) d[Text(k)] = Text(v);
        return d;
      });
}

}  // namespace meshckpt::python
