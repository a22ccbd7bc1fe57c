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

// The C++ side of a manager, shared (IoShared) so that close() and the
// garbage collector destroy it safely; destroying it waits for an async
// save in flight.
struct ManagerState {
  std::unique_ptr<Communicator> comm;
  Module root;  // Its children are the checkpoint's.
  std::unique_ptr<DTensorCheckpoint> checkpoint;
  std::unique_ptr<CheckpointManager> manager;  // Destroyed first.
};

class PyManager {
 public:
  PyManager(py::handle comm, const std::string& directory, py::handle tensors,
            const ManagerArgs& args) {
    auto state = std::make_unique<ManagerState>();
    state->comm = MakeCommunicator(comm);
    Communicator& c = *state->comm;
    absl::Status local =
        ParseTensors(tensors, /*writeable=*/true, c.rank(), c.size(), &tensors_);
    if (local.ok()) local = Track(&state->root);
    if (local.ok() && tensors_.empty()) {
      local = absl::InvalidArgumentError("a CheckpointManager needs at least one tensor");
    }
    {
      IoScope io;
      local = c.Agree(local);
    }
    Check(local);
    CheckpointManagerOptions o;
    o.max_to_keep = args.max_to_keep;
    o.keep_checkpoint_every_n_hours = args.keep_every_n_hours;
    o.checkpoint_name = args.checkpoint_name;
    if (args.async_save) o.async_save = AsyncSaveOptions();
    {
      IoScope io;
      state->checkpoint = Unwrap(DTensorCheckpoint::Create(&c, tensors_[0].layout->mesh(),
                                                           state->root.children()));
      state->manager = Unwrap(
          CheckpointManager::Create(state->checkpoint.get(), directory, std::move(o)));
    }
    state_ = IoShared(std::move(state));
  }

  void Close() { state_.reset(); }

  // The state, for a call to hold (with the GIL) across its IoScope.
  std::shared_ptr<ManagerState> get() const {
    if (state_ == nullptr) {
      Check(absl::FailedPreconditionError("the checkpoint manager is closed"));
    }
    return state_;
  }

  std::optional<std::string> Save(std::optional<int64_t> step,
                                  std::optional<int64_t> checkpoint_number) {
    std::shared_ptr<ManagerState> st = get();
    absl::StatusOr<std::optional<std::string>> saved;
    {
      IoScope io;
      if (step.has_value()) st->checkpoint->SetStep(*step);
      saved = st->manager->Save(checkpoint_number, /*check_interval=*/true);
    }
    return Unwrap(std::move(saved));
  }

  std::optional<std::string> RestoreOrInitialize(const std::string& match) {
    std::shared_ptr<ManagerState> st = get();
    RestoreMatch how = RestoreMatch::kAllMatched;
    if (match == "existing") {
      how = RestoreMatch::kExistingObjectsMatched;
    } else if (match == "partial") {
      how = RestoreMatch::kPartial;
    } else if (match != "all") {
      Check(absl::InvalidArgumentError(absl::StrCat(
          "match must be 'all', 'existing' or 'partial', not '", match, "'")));
    }
    absl::StatusOr<RestoreResult> r;
    {
      IoScope io;
      r = st->manager->RestoreOrInitialize(how);
    }
    RestoreResult result = Unwrap(std::move(r));
    if (result.restored_from.has_value()) CopyReplicas();
    return result.restored_from;
  }

  void Wait() {
    std::shared_ptr<ManagerState> st = get();
    absl::Status s;
    {
      IoScope io;
      s = st->manager->WaitUntilFinished();
    }
    Check(s);
  }

 private:
  // Builds the module tree of the keys under `root`, each leaf wrapping the
  // arrays.
  absl::Status Track(Module* root) {
    for (PyTensor& t : tensors_) {
      if (t.dtype == DType::kString) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", t.key,
            "': the manager wraps arrays in place, which string tensors cannot be; save "
            "them with meshckpt.save"));
      }
      std::vector<std::string> parts = absl::StrSplit(t.key, '/');
      Module* parent = root;
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

  // The arrays the variables wrap: they outlive the state, which a call in
  // flight holds only while Python keeps this object alive.
  std::vector<PyTensor> tensors_;
  std::vector<Replica> replicas_;
  std::shared_ptr<ManagerState> state_;
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
          [](const PyManager& p) { return p.get()->manager->latest_checkpoint(); })
      .def_property_readonly(
          "checkpoints",
          [](const PyManager& p) { return p.get()->manager->checkpoints(); })
      .def_property_readonly(
          "directory", [](const PyManager& p) { return p.get()->manager->directory(); });
}

}  // namespace meshckpt::python
