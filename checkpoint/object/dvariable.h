// DVariable: a named, typed, globally shaped tensor laid out over a mesh,
// holding the data of this rank's devices (its own memory, or the caller's).
//
// Storage is one buffer per distinct non-empty shard among the local
// devices (ShardMap::LocalShards()): devices of this rank that replicate the
// same shard share one buffer, and devices whose shard is empty have none.
// Each buffer holds its shard (ShardMap::DeviceBox) in row-major order.
// Access is a cheap span over that storage. Memory follows the shards, so a
// variable on a mesh of many devices per rank costs its data, not its
// devices.
//
//   DVariable* w = *module.AddVariable("kernel", DType::kFloat32, {768, 3072},
//                                      *Layout::Create({"unsharded", "model"}, mesh));
//   for (const DVariable::Shard<float>& s : w->Shards<float>()) {
//     // s.data: one buffer, visited once even when several local devices
//     // (s.devices) share it; s.box: its place in global coordinates.
//     for (float& x : s.data) x += 1;
//   }
//
// Looping over mesh.local_device_ids() and shard(d) instead visits a
// replicated buffer once per device sharing it: fine for reading, wrong for
// updates such as `x += 1`.
//
// Over caller memory (Wrap, Module::WrapVariable): the variable uses
// buffers the caller owns, e.g. a framework's tensors, instead of its own,
// so save and restore read and write them directly, with no copy. Rules:
//   - one buffer per distinct local shard, in local_shards() order (that is
//     ShardMap::LocalShards(), the order of Shards()); a rank holding none
//     passes none. Devices that share a shard share its buffer.
//   - buffer i holds ShardBox(local_shards()[i]).num_elements() elements of
//     DTypeSize(dtype) bytes, row-major, and is aligned for its element type
//     (DTypeAlignment(dtype)); buffers do not overlap.
//   - the buffers must outlive the variable and every operation that may
//     still touch them: a restore whose values are applied when the
//     variable is tracked (deferred restoration), and a save call.
//   - the caller must not change them during a save call (the checkpoint
//     holds what they contained during the call; an async save has staged
//     or written them when its call returns, and never reads them again)
//     nor read them while a restore writes them.
//   - string variables cannot wrap memory (their elements are std::string
//     objects the variable manages): InvalidArgument.
// Bad input (null pointer, wrong count, misaligned, string dtype) is
// InvalidArgument naming the variable and the rank.
//
//   std::vector<void*> mine;  // The framework's tensors, one per shard:
//   for (int64_t s : ShardMap::Create(layout, {768, 3072})->LocalShards())
//     mine.push_back(MyTensorFor(s));
//   DVariable* k = *module.WrapVariable("kernel", DType::kFloat32, {768, 3072},
//                                       layout, mine);
//
// Creation needs no communication, but every rank should create the same
// variables (same name, dtype, shape, layout specs) for a checkpoint to be
// saved collectively. Not thread-safe.
#ifndef MESHCKPT_CHECKPOINT_OBJECT_DVARIABLE_H_
#define MESHCKPT_CHECKPOINT_OBJECT_DVARIABLE_H_

#include <cassert>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt {

class DVariable : public Trackable {
 public:
  // One distinct local buffer (Shards()): T is the element type, const for a
  // const variable.
  template <typename T>
  struct Shard {
    int64_t shard = 0;             // Index in the shard grid (ShardMap).
    Box box;                       // Its part of the tensor, global coordinates.
    absl::Span<T> data;            // box.num_elements() elements, row-major.
    std::vector<int64_t> devices;  // Local devices sharing it, ascending.
  };

  // InvalidArgument when the layout does not fit the shape. Data starts
  // zeroed (empty strings).
  static absl::StatusOr<std::unique_ptr<DVariable>> Create(std::string name, DType dtype,
                                                           std::vector<int64_t> shape,
                                                           Layout layout);

  // A variable over `shard_buffers`, which the caller keeps owning; see the
  // rules at the top of this file. Data is whatever the buffers hold.
  static absl::StatusOr<std::unique_ptr<DVariable>> Wrap(
      std::string name, DType dtype, std::vector<int64_t> shape, Layout layout,
      std::vector<void*> shard_buffers);

  const std::string& name() const { return name_; }
  // True for a variable made by Wrap.
  bool wraps_caller_memory() const { return wrapped_; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return map_.global_shape(); }
  const Layout& layout() const { return map_.layout(); }
  const ShardMap& shard_map() const { return map_; }
  int64_t num_elements() const { return map_.global_box().num_elements(); }

  // The part of the tensor `device_id` (a local device) holds.
  Box DeviceBox(int64_t device_id) const { return map_.DeviceBox(device_id); }

  // Raw bytes of a local device's shard (not for strings).
  absl::Span<char> mutable_bytes(int64_t device_id);
  absl::Span<const char> bytes(int64_t device_id) const;
  // Typed view; sizeof(T) must equal DTypeSize(dtype()).
  template <typename T>
  absl::Span<T> shard(int64_t device_id) {
    assert(sizeof(T) == DTypeSize(dtype_));
    absl::Span<char> b = mutable_bytes(device_id);
    return absl::Span<T>(reinterpret_cast<T*>(b.data()), b.size() / sizeof(T));
  }
  template <typename T>
  absl::Span<const T> shard(int64_t device_id) const {
    assert(sizeof(T) == DTypeSize(dtype_));
    absl::Span<const char> b = bytes(device_id);
    return absl::Span<const T>(reinterpret_cast<const T*>(b.data()),
                               b.size() / sizeof(T));
  }
  // String variables only.
  absl::Span<std::string> strings(int64_t device_id);

  // Every distinct non-empty shard this rank stores, each once, in
  // local_shards() order. T is std::string for string variables, otherwise
  // a type of DTypeSize(dtype()) bytes. O(local shards x devices sharing
  // each); the spans stay valid as long as the variable.
  template <typename T>
  std::vector<Shard<T>> Shards() {
    return MakeShards<T>(this);
  }
  template <typename T>
  std::vector<Shard<const T>> Shards() const {
    return MakeShards<const T>(this);
  }

  // The shards this rank stores, ascending (ShardMap::LocalShards()).
  const std::vector<int64_t>& local_shards() const { return local_shards_; }
  // One pointer per local shard to its storage: SaveTensor/RestoreTensor
  // shard_data.
  std::vector<const void*> ShardData() const;
  std::vector<void*> MutableShardData();
  // One pointer per local device (mesh.local_device_ids() order), null for
  // empty shards: SaveTensor/RestoreTensor device_data. O(devices per rank).
  std::vector<const void*> DeviceData() const;
  std::vector<void*> MutableDeviceData();

 private:
  // With `wrap`, storage slot i is external[i]; otherwise the variable
  // allocates its own zeroed storage.
  DVariable(std::string name, DType dtype, ShardMap map, bool wrap,
            std::vector<void*> external);
  // Storage slot of a local device's shard; -1 when that shard is empty.
  int Slot(int64_t device_id) const;
  void* SlotData(int slot) const;
  // Local devices holding local_shards_[slot], ascending.
  std::vector<int64_t> SlotDevices(int slot) const;
  template <typename T, typename Self>
  static std::vector<Shard<T>> MakeShards(Self* self);

  std::string name_;
  DType dtype_;
  ShardMap map_;
  std::vector<int64_t> local_shards_;   // Storage slot -> shard.
  std::vector<int64_t> slot_elements_;  // Storage slot -> elements.
  bool wrapped_ = false;
  std::vector<void*> external_;  // Storage slot -> caller's buffer (Wrap).
  std::vector<std::vector<char>> data_;
  std::vector<std::vector<std::string>> strings_;
};

template <typename T, typename Self>
std::vector<DVariable::Shard<T>> DVariable::MakeShards(Self* self) {
  using U = std::remove_const_t<T>;
  constexpr bool kIsString = std::is_same_v<U, std::string>;
  assert((self->dtype_ == DType::kString) == kIsString);
  assert(kIsString || sizeof(U) == DTypeSize(self->dtype_));
  (void)kIsString;
  std::vector<Shard<T>> out;
  out.reserve(self->local_shards_.size());
  for (size_t i = 0; i < self->local_shards_.size(); ++i) {
    const int slot = static_cast<int>(i);
    Shard<T> s;
    s.shard = self->local_shards_[i];
    s.box = self->map_.ShardBox(s.shard);
    s.data = absl::Span<T>(static_cast<T*>(self->SlotData(slot)),
                           static_cast<size_t>(s.box.num_elements()));
    s.devices = self->SlotDevices(slot);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_DVARIABLE_H_
