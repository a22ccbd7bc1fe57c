// meshckpt._meshckpt._Manager: CheckpointManager over numpy arrays.
//
// The tensors become DVariables wrapping the caller's arrays (no copy): a
// key "model/dense/kernel" is variable "kernel" of module "dense" of module
// "model" in the saved object graph, so the checkpoint's keys are the
// object-graph ones ("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE").
// A variable wraps one buffer per distinct local shard, the first local
// device's array holding it; after a restore, the other local devices that
// replicate that shard get a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/python/bindings.h"
#include "meshckpt/python/errors.h"
#include "meshckpt/python/tensors.h"

namespace meshckpt::python {

namespace py = pybind11;

namespace {

struct ManagerArgs {
  std::optional<int> max_to_keep;
  double keep_every_n_hours = 0;
  std::string checkpoint_name;
  bool async_save = false;
};

class PyManager {
 public:
  PyManager(py::handle comm, const std::string& directory, py::handle tensors,
            const ManagerArgs& args)
      : comm_(MakeCommunicator(comm)) {
    absl::Status local = ParseTensors(tensors, /*writeable=*/true, comm_->rank(),
                                      comm_->size(), &tensors_);
    if (local.ok()) local = Track();
    if (local.ok() && tensors_.empty()) {
      local = absl::InvalidArgumentError("a CheckpointManager needs at least one tensor");
    }
    {
      IoScope io;
      local = comm_->Agree(local);
    }
    Check(local);
    CheckpointManagerOptions o;
    o.max_to_keep = args.max_to_keep;
    o.keep_checkpoint_every_n_hours = args.keep_every_n_hours;
    o.checkpoint_name = args.checkpoint_name;
    if (args.async_save) o.async_save = AsyncSaveOptions();
    IoScope io;
    checkpoint_ = Unwrap(DTensorCheckpoint::Create(
        comm_.get(), tensors_[0].layout->mesh(), root_.children()));
    manager_ =
        Unwrap(CheckpointManager::Create(checkpoint_.get(), directory, std::move(o)));
  }
  ~PyManager() { Close(); }

  void Close() {
    if (manager_ == nullptr) return;
    IoScope io;
    manager_.reset();  // Waits for an async save in flight.
    checkpoint_.reset();
  }

  CheckpointManager& get() const {
    if (manager_ == nullptr) {
      Check(absl::FailedPreconditionError("the checkpoint manager is closed"));
    }
    return *manager_;
  }

  std::optional<std::string> Save(std::optional<int64_t> step,
                                  std::optional<int64_t> checkpoint_number) {
    CheckpointManager& m = get();
    if (step.has_value()) checkpoint_->SetStep(*step);
    IoScope io;
    return Unwrap(m.Save(checkpoint_number, /*check_interval=*/true));
  }

  std::optional<std::string> RestoreOrInitialize(const std::string& match) {
    CheckpointManager& m = get();
    RestoreMatch how = RestoreMatch::kAllMatched;
    if (match == "existing") {
      how = RestoreMatch::kExistingObjectsMatched;
    } else if (match == "partial") {
      how = RestoreMatch::kPartial;
    } else if (match != "all") {
      Check(absl::InvalidArgumentError(absl::StrCat(
          "match must be 'all', 'existing' or 'partial', not '", match, "'")));
    }
    RestoreResult r;
    {
      IoScope io;
      r = Unwrap(m.RestoreOrInitialize(how));
    }
    if (r.restored_from.has_value()) CopyReplicas();
    return r.restored_from;
  }

  void Wait() {
    CheckpointManager& m = get();
    IoScope io;
    Check(m.WaitUntilFinished());
  }

 private:
  // Builds the module tree of the keys, each leaf wrapping the arrays.
  absl::Status Track() {
    for (PyTensor& t : tensors_) {
      if (t.dtype == DType::kString) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", t.key,
            "': the manager wraps arrays in place, which string tensors cannot be; save "
            "them with meshckpt.save"));
      }
      std::vector<std::string> parts = absl::StrSplit(t.key, '/');
      Module* parent = &root_;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        Trackable* child = parent->FindChild(parts[i]);
        if (child == nullptr) {
          absl::StatusOr<Module*> added = parent->AddModule(parts[i]);
          if (!added.ok()) return added.status();
          parent = *added;
        } else if (auto* mod = dynamic_cast<Module*>(child)) {
          parent = mod;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("tensor '", t.key, "': '", parts[i], "' is also a tensor"));
        }
      }
      absl::StatusOr<ShardMap> map = ShardMap::Create(*t.layout, t.shape);
      if (!map.ok()) return map.status();
      // The first local device holding each local shard lends its array.
      std::vector<void*> devices = DevicePointers(t);
      std::vector<void*> buffers;
      for (int64_t shard : map->LocalShards()) {
        int first = -1;
        for (size_t i = 0; i < t.devices.size(); ++i) {
          if (map->ShardOfDevice(t.devices[i]) != shard) continue;
          if (first < 0) {
            first = static_cast<int>(i);
            buffers.push_back(devices[i]);
          } else {
            replicas_.push_back({&t, static_cast<size_t>(first), i});
          }
        }
      }
      absl::StatusOr<DVariable*> v = parent->WrapVariable(parts.back(), t.dtype, t.shape,
                                                          *t.layout, std::move(buffers));
      if (!v.ok()) return v.status();
    }
    return absl::OkStatus();
  }

  void CopyReplicas() {
    for (const Replica& r : replicas_) {
      const py::array& from = r.tensor->arrays[r.from];
      py::array& to = r.tensor->arrays[r.to];
      std::memcpy(to.mutable_data(), from.data(), static_cast<size_t>(from.nbytes()));
    }
  }

  struct Replica {
    PyTensor* tensor;
    size_t from, to;  // Indices of arrays holding the same shard.
  };

  std::unique_ptr<Communicator> comm_;
  std::vector<PyTensor> tensors_;  // Hold the arrays the variables wrap.
  Module root_;
  std::vector<Replica> replicas_;
  std::unique_ptr<DTensorCheckpoint> checkpoint_;
  std::unique_ptr<CheckpointManager> manager_;
};

}  // namespace

void BindManager(py::module_& m) {
  py::class_<PyManager>(m, "_Manager")
      .def(py::init([](py::handle comm, const std::string& directory, py::handle tensors,
                       std::optional<int> max_to_keep, double keep_every_n_hours,
                       const std::string& checkpoint_name, bool async_save) {
             return std::make_unique<PyManager>(comm, directory, tensors,
                                                ManagerArgs{max_to_keep,
                                                            keep_every_n_hours,
                                                            checkpoint_name, async_save});
           }),
           py::arg("comm"), py::arg("directory"), py::arg("tensors"),
           py::arg("max_to_keep"), py::arg("keep_every_n_hours"),
           py::arg("checkpoint_name"), py::arg("async_save"))
      .def("save", &PyManager::Save, py::arg("step") = py::none(),
           py::arg("checkpoint_number") = py::none())
      .def("restore_or_initialize", &PyManager::RestoreOrInitialize,
           py::arg("match") = "all")
      .def("wait_until_finished", &PyManager::Wait)
      .def("close", &PyManager::Close)
      .def_property_readonly(
          "latest_checkpoint",
          [](const PyManager& p) { return p.get().latest_checkpoint(); })
      .def_property_readonly("checkpoints",
                             [](const PyManager& p) { return p.get().checkpoints(); })
      .def_property_readonly("directory",
                             [](const PyManager& p) { return p.get().directory(); });
}

}  // namespace meshckpt::python
