// DVariable: a named, typed, globally shaped tensor laid out over a mesh,
// owning the data of this rank's devices.
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
//   for (int64_t d : w->layout().mesh().local_device_ids()) {
//     absl::Span<float> s = w->shard<float>(d);   // this device's columns
//     Box where = w->DeviceBox(d);                // in global coordinates
//   }
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
  // InvalidArgument when the layout does not fit the shape. Data starts
  // zeroed (empty strings).
  static absl::StatusOr<std::unique_ptr<DVariable>> Create(std::string name, DType dtype,
                                                           std::vector<int64_t> shape,
                                                           Layout layout);

  const std::string& name() const { return name_; }
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
  DVariable(std::string name, DType dtype, ShardMap map);
  // Storage slot of a local device's shard; -1 when that shard is empty.
  int Slot(int64_t device_id) const;
  void* SlotData(int slot) const;

  std::string name_;
  DType dtype_;
  ShardMap map_;
  std::vector<int64_t> local_shards_;  // Storage slot -> shard.
  std::vector<std::vector<char>> data_;
  std::vector<std::vector<std::string>> strings_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_DVARIABLE_H_
