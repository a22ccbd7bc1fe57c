// Trackable and Module: the object graph a checkpoint saves.
//
// A checkpoint is a tree of named objects rooted at a DTensorCheckpoint:
// `model/dense/kernel`, `optimizer/m/model/dense/kernel`. Containers are
// Modules; leaves are DVariables (tensors) and TrackedValues (scalars,
// strings, bytes). An object reachable along several paths is saved once,
// under the first path found (children in the order they were tracked).
//
// Checkpoint keys follow TensorFlow's object-based naming
// (`model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`); the HDF5 dataset of a
// leaf is its path (`model/dense/kernel`).
//
// Deferred restoration: when a checkpoint is restored and holds a value for
// a child that does not exist yet, the value is applied when that child is
// later tracked under the same name. Tracking is then collective (it may
// read the checkpoint): every rank must track the same children in the same
// order. The LoadStatus of that restore reflects it.
//
//   Module model;
//   DVariable* w = *model.AddVariable("kernel", DType::kFloat32, {4, 8}, l);
//   Module* opt = *model.AddModule("optimizer");
//   TrackedValue* step = *model.AddValue("step", TrackedValue::Create(int64_t{0}));
//
// Objects are not thread-safe; their addresses must stay fixed while they are
// tracked (hence non-copyable, non-movable).
#ifndef MESHCKPT_CHECKPOINT_OBJECT_TRACKABLE_H_
#define MESHCKPT_CHECKPOINT_OBJECT_TRACKABLE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt {

class DVariable;
class TrackedValue;
namespace internal {
class RestoreSession;
}  // namespace internal

class Trackable {
 public:
  virtual ~Trackable() = default;
  Trackable(const Trackable&) = delete;
  Trackable& operator=(const Trackable&) = delete;

  // Children in the order they were tracked.
  const std::vector<std::pair<std::string, Trackable*>>& children() const {
    return children_;
  }
  // nullptr when there is no such child.
  Trackable* FindChild(absl::string_view name) const;

  // InvalidArgument unless `name` is non-empty, has no '/' and does not
  // start with '.'.
  static absl::Status ValidateChildName(absl::string_view name);

 protected:
  Trackable() = default;

  // Adds `child` under `name`. InvalidArgument for a null child or a name
  // that is empty, has '/', starts with '.', or is already used. Applies a
  // pending deferred restoration for `name` (collective).
  absl::Status TrackChild(std::string name, Trackable* child);

 private:
  friend class internal::RestoreSession;

  struct Pending {
    std::shared_ptr<internal::RestoreSession> session;
    int node = 0;  // Node of the checkpoint's object graph.
  };

  std::vector<std::pair<std::string, Trackable*>> children_;
  std::map<std::string, Pending> pending_;
};

// A container of named children; owns those it creates.
class Module : public Trackable {
 public:
  Module() = default;

  // Tracks an object owned elsewhere (it must outlive this module).
  absl::Status Track(std::string name, Trackable* child) {
    return TrackChild(std::move(name), child);
  }
  absl::StatusOr<Module*> AddModule(std::string name);
  absl::StatusOr<DVariable*> AddVariable(std::string name, DType dtype,
                                         std::vector<int64_t> shape, Layout layout);
  // A variable over buffers the caller owns (DVariable::Wrap; the lifetime
  // and layout rules are in dvariable.h): one per distinct local shard.
  absl::StatusOr<DVariable*> WrapVariable(std::string name, DType dtype,
                                          std::vector<int64_t> shape, Layout layout,
                                          std::vector<void*> shard_buffers);
  // Takes ownership, e.g. AddValue("step", TrackedValue::Create(int64_t{0})).
  absl::StatusOr<TrackedValue*> AddValue(std::string name,
                                         std::unique_ptr<TrackedValue> value);

 private:
  // Owns and tracks a variable just made (or returns its error).
  absl::StatusOr<DVariable*> AdoptVariable(std::string name,
                                           absl::StatusOr<std::unique_ptr<DVariable>> v);

  std::vector<std::unique_ptr<Trackable>> owned_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_TRACKABLE_H_
