// Mesh, Layout, and the collective save/restore of numpy shards (mpi4py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "meshckpt/python/arrays.h"
#include "meshckpt/python/bindings.h"
#include "meshckpt/python/errors.h"
#include "meshckpt/python/tensors.h"

namespace meshckpt::python {

namespace py = pybind11;

namespace {

py::tuple Tuple(const std::vector<int64_t>& v) {
  py::tuple t(v.size());
  for (size_t i = 0; i < v.size(); ++i) t[i] = v[i];
  return t;
}

Mesh MakeMesh(py::handle dims, py::handle comm, std::optional<int> rank,
              std::optional<int> num_ranks) {
  std::vector<MeshDimension> d;
  if (py::isinstance<py::dict>(dims)) {
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(dims)) {
      d.push_back({py::cast<std::string>(k), py::cast<int64_t>(v)});
    }
  } else {
    for (py::handle p : dims) {
      auto pair = py::cast<std::pair<std::string, int64_t>>(p);
      d.push_back({pair.first, pair.second});
    }
  }
  int r = rank.value_or(0), n = num_ranks.value_or(1);
  if (!comm.is_none()) {
    r = py::cast<int>(comm.attr("Get_rank")());
    n = py::cast<int>(comm.attr("Get_size")());
  }
  return Unwrap(Mesh::Create(std::move(d), r, n));
}

std::map<std::string, std::string> Metadata(py::handle metadata) {
  std::map<std::string, std::string> out;
  if (metadata.is_none()) return out;
  for (auto [k, v] : py::reinterpret_borrow<py::dict>(metadata)) {
    out[py::cast<std::string>(k)] = py::cast<std::string>(v);
  }
  return out;
}

void Save(py::handle comm_obj, const std::string& prefix, py::handle tensors,
          int64_t step, py::handle metadata) {
  std::unique_ptr<Communicator> comm = MakeCommunicator(comm_obj);
  std::vector<PyTensor> parsed;
  CheckpointContents contents;
  contents.step = step;
  absl::Status local =
      ParseTensors(tensors, /*writeable=*/false, comm->rank(), comm->size(), &parsed);
  if (local.ok()) {
    try {
      contents.user_metadata = Metadata(metadata);
    } catch (py::error_already_set& e) {
      local = absl::InvalidArgumentError(absl::StrCat("metadata: ", e.what()));
    } catch (py::cast_error& e) {
      local = absl::InvalidArgumentError(
          absl::StrCat("metadata must map str to str (", e.what(), ")"));
    }
  }
  std::vector<SaveTensor> save;
  save.reserve(parsed.size());
  for (PyTensor& t : parsed) {
    std::vector<void*> p = DevicePointers(t);
    save.push_back(SaveTensor{t.key, "", t.dtype, t.shape, *t.layout,
                              std::vector<const void*>(p.begin(), p.end())});
  }
  absl::Status s;
  {
    IoScope io;
    s = comm->Agree(local);
    if (s.ok()) s = SaveTensors(*comm, prefix, save, contents, IoOptions());
  }
  Check(s);
}

void Restore(py::handle comm_obj, const std::string& prefix, py::handle tensors) {
  std::unique_ptr<Communicator> comm = MakeCommunicator(comm_obj);
  std::vector<PyTensor> parsed;
  absl::Status local =
      ParseTensors(tensors, /*writeable=*/true, comm->rank(), comm->size(), &parsed);
  std::vector<RestoreTensor> restore;
  restore.reserve(parsed.size());
  for (PyTensor& t : parsed) {
    restore.push_back(
        RestoreTensor{t.key, t.dtype, t.shape, *t.layout, DevicePointers(t)});
  }
  absl::Status s;
  {
    IoScope io;
    s = comm->Agree(local);
    if (s.ok()) s = RestoreTensors(*comm, prefix, restore, IoOptions());
  }
  // NotFound with the index present: a key, not the checkpoint, is missing.
  std::error_code ec;
  const bool missing_key = absl::IsNotFound(s) &&
                           std::filesystem::exists(IndexFilePath(prefix), ec);
  Check(s, missing_key);
  for (PyTensor& t : parsed) {
    if (t.dtype == DType::kString) FillStrings(t);
  }
}

}  // namespace

void BindCollective(py::module_& m) {
  py::class_<Mesh>(m, "Mesh", R"(Named device dimensions over ranks (DTensor's Mesh).

Mesh({"batch": 2, "model": 4}, comm) is rank comm.Get_rank()'s view of a mesh
of 8 devices over comm.Get_size() ranks (devices split in contiguous blocks);
without comm, give rank= and num_ranks= (default: rank 0 of 1).
Mesh.from_string parses the DTensor text form, as in C++.)")
      .def(py::init(&MakeMesh), py::arg("dims"), py::arg("comm") = py::none(),
           py::kw_only(), py::arg("rank") = py::none(), py::arg("num_ranks") = py::none())
      .def_static("from_string",
                  [](const std::string& s) { return Unwrap(Mesh::FromString(s)); })
      .def("to_string", &Mesh::ToString)
      .def("__str__", &Mesh::ToString)
      .def("__repr__",
           [](const Mesh& m) { return absl::StrCat("Mesh('", m.ToString(), "')"); })
      .def("__eq__",
           [](const Mesh& a, const Mesh& b) { return a.ToString() == b.ToString(); })
      .def_property_readonly("dims",
                             [](const Mesh& m) {
                               std::vector<std::pair<std::string, int64_t>> d;
                               for (const MeshDimension& x : m.dims())
                                 d.emplace_back(x.name, x.size);
                               return d;
                             })
      .def_property_readonly("num_devices", &Mesh::num_devices)
      .def_property_readonly("rank", &Mesh::rank)
      .def_property_readonly("num_ranks", &Mesh::num_ranks)
      .def_property_readonly("local_device_ids", &Mesh::local_device_ids);

  py::class_<Layout>(m, "Layout",
                     R"(How a tensor is laid out over a Mesh (DTensor's Layout).

Layout(["unsharded", "model"], mesh): one spec per tensor dimension, either
"unsharded" or a mesh dimension's name. Layout.from_string parses the DTensor
text form ("sharding_specs:x,unsharded, mesh:|x=2|0,1|0|*CPU"); bad specs or
strings raise ValueError.)")
      .def(py::init([](std::vector<std::string> specs, const Mesh& mesh) {
             return Unwrap(Layout::Create(std::move(specs), mesh));
           }),
           py::arg("sharding_specs"), py::arg("mesh"))
      .def_static("from_string",
                  [](const std::string& s) { return Unwrap(Layout::FromString(s)); })
      .def_static("replicated", &Layout::Replicated, py::arg("mesh"), py::arg("rank"))
      .def("to_string", &Layout::ToString)
      .def("__str__", &Layout::ToString)
      .def("__repr__",
           [](const Layout& l) { return absl::StrCat("Layout('", l.ToString(), "')"); })
      .def("__eq__",
           [](const Layout& a, const Layout& b) { return a.ToString() == b.ToString(); })
      .def_property_readonly("mesh", &Layout::mesh)
      .def_property_readonly("rank", &Layout::rank)
      .def_property_readonly("sharding_specs", &Layout::sharding_specs)
      .def(
          "local_boxes",
          [](const Layout& l, std::vector<int64_t> shape) {
            ShardMap map = Unwrap(ShardMap::Create(l, std::move(shape)));
            py::list out;
            for (int64_t d : l.mesh().local_device_ids()) {
              const Box b = map.DeviceBox(d);
              out.append(py::make_tuple(Tuple(b.origin()), Tuple(b.shape())));
            }
            return out;
          },
          py::arg("shape"),
          "(origin, shape) of the part of a tensor of `shape` each local device holds, "
          "in mesh.local_device_ids order: the arrays save and restore take.");

  m.def("_save", &Save, py::arg("comm"), py::arg("prefix"), py::arg("tensors"),
        py::arg("step") = 0, py::arg("metadata") = py::none());
  m.def("_restore", &Restore, py::arg("comm"), py::arg("prefix"), py::arg("tensors"));
}

}  // namespace meshckpt::python
