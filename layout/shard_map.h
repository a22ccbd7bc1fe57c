// ShardMap: which part of a tensor each device of a mesh holds, and who writes
// each distinct part.
//
// Split rule (DTensor requires even splits; we do not). A dimension of size n
// split k ways uses block b = ceil(n / k); shard i covers
//   [min(i*b, n), min((i+1)*b, n))
// so trailing shards may be short or empty, and even splits are the special
// case. A tensor's shard grid has k_d shards along dimension d (k_d = 1 when
// unsharded); shards are numbered row-major over that grid. A device holds the
// shard whose grid coordinate along d is the device's coordinate on the mesh
// dimension sharding d. Devices that differ only along mesh dimensions the
// layout does not name hold the same shard (replication).
//
// Writer selection: every non-empty distinct shard is written exactly once, by
// one device that holds it. WriterAssigner walks tensors in the order given
// (the same on every rank) and gives each shard to the least-loaded rank, by
// bytes so far, among the ranks holding it; ties go to the lower rank, and on
// that rank to its lowest device holding the shard. The result depends only on
// the inputs, so every rank computes the same answer without communicating.
// Greedy guarantee: for shards every rank holds (replicated tensors), the
// spread max - min of bytes per rank never exceeds the largest such shard.
//
// Cost follows the shards that exist, not the devices: along a dimension
// only the first ceil(n / b) shards are non-empty, so a tensor of 8
// elements split over 2^24 devices has 8 non-empty shards, and the
// functions below enumerate those. The devices holding a shard are a
// sub-grid of the mesh (fixed on the mesh dimensions the layout names, free
// on the others); NextDeviceOfShard steps through it without listing it,
// and WriterAssigner visits one device per rank holding a shard.
//
// Example:
//   ShardMap m = *ShardMap::Create(layout, {10, 6});  // layout {"x", "y"}
//   Box b = m.DeviceBox(device);                       // what device holds
//   for (int64_t s : m.LocalShards()) m.ShardBox(s);  // what this rank holds
//
// Immutable value types, thread-compatible.
#ifndef MESHCKPT_LAYOUT_SHARD_MAP_H_
#define MESHCKPT_LAYOUT_SHARD_MAP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/index_interval.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt {

// ceil(n / k) for n >= 0, k >= 1.
constexpr int64_t SplitBlockSize(int64_t n, int64_t k) {
  return n / k + (n % k != 0 ? 1 : 0);
}
// Shard i (0 <= i < k) of a dimension of size n split k ways. Written so no
// product exceeds n: i*b is formed only when i <= n/b.
constexpr IndexInterval SplitShard(int64_t n, int64_t k, int64_t i) {
  const int64_t b = SplitBlockSize(n, k);
  if (b == 0) return IndexInterval::UncheckedSized(0, 0);
  const int64_t full = n / b;  // Shards starting at or before n.
  const int64_t lo = i <= full ? i * b : n;
  const int64_t hi = i + 1 <= full ? (i + 1) * b : n;
  return IndexInterval::UncheckedSized(lo, hi - lo);
}

class ShardMap {
 public:
  // Errors: InvalidArgument when the layout's rank differs from the shape's
  // or the shape is invalid (negative sizes, element count overflows int64).
  static absl::StatusOr<ShardMap> Create(Layout layout,
                                         std::vector<int64_t> global_shape);

  const Layout& layout() const { return layout_; }
  const Box& global_box() const { return global_box_; }
  const std::vector<int64_t>& global_shape() const { return global_box_.shape(); }
  // Shards along each tensor dimension.
  const std::vector<int64_t>& grid_shape() const { return grid_; }
  // ceil(n_d / k_d) per dimension: the shape of every full shard.
  const std::vector<int64_t>& block_shape() const { return block_; }
  int64_t num_shards() const { return num_shards_; }

  // Non-empty shards along each dimension (the leading ones):
  // ceil(n_d / block_d), 0 when n_d is 0.
  const std::vector<int64_t>& nonempty_grid_shape() const { return nonempty_; }
  int64_t num_nonempty_shards() const { return num_nonempty_; }

  Box ShardBox(int64_t shard) const;
  int64_t ShardOfDevice(int64_t device_id) const;
  Box DeviceBox(int64_t device_id) const { return ShardBox(ShardOfDevice(device_id)); }
  // Devices holding `shard`, ascending. O(devices holding it): for large
  // meshes use NextDeviceOfShard.
  std::vector<int64_t> DevicesOfShard(int64_t shard) const;
  // The lowest device >= `from` holding `shard`, or -1 when none does.
  // O(mesh rank).
  int64_t NextDeviceOfShard(int64_t shard, int64_t from) const;

  // Calls fn(shard) for every non-empty shard, ascending.
  template <typename Fn>
  void ForEachNonEmptyShard(Fn&& fn) const;
  // The non-empty shards held by at least one device of `devices`,
  // ascending. O(min(devices, non-empty shards)).
  std::vector<int64_t> ShardsHeldBy(DeviceRange devices) const;
  // ... by the local devices of the layout's mesh: one entry per buffer of
  // SaveTensor/RestoreTensor::shard_data.
  std::vector<int64_t> LocalShards() const {
    return ShardsHeldBy(layout_.mesh().local_device_range());
  }

 private:
  ShardMap(Layout layout, Box global_box, std::vector<int64_t> grid,
           std::vector<int64_t> block, std::vector<int64_t> nonempty, int64_t num_shards,
           int64_t num_nonempty)
      : layout_(std::move(layout)),
        global_box_(std::move(global_box)),
        grid_(std::move(grid)),
        block_(std::move(block)),
        nonempty_(std::move(nonempty)),
        num_shards_(num_shards),
        num_nonempty_(num_nonempty) {}

  Layout layout_;
  Box global_box_;
  std::vector<int64_t> grid_;
  std::vector<int64_t> block_;
  std::vector<int64_t> nonempty_;
  int64_t num_shards_;
  int64_t num_nonempty_;
};

template <typename Fn>
void ShardMap::ForEachNonEmptyShard(Fn&& fn) const {
  if (num_nonempty_ == 0) return;
  const int r = static_cast<int>(grid_.size());
  std::vector<int64_t> c(r, 0);  // Odometer over the non-empty grid.
  while (true) {
    int64_t shard = 0;
    for (int d = 0; d < r; ++d) shard = shard * grid_[d] + c[d];
    fn(shard);
    int d = r - 1;
    for (; d >= 0; --d) {
      if (++c[d] < nonempty_[d]) break;
      c[d] = 0;
    }
    if (d < 0) return;
  }
}

struct ShardWriter {
  int64_t shard = 0;
  int64_t device = 0;
  int rank = 0;
  Box box;
};

class WriterAssigner {
 public:
  explicit WriterAssigner(int num_ranks) : bytes_per_rank_(num_ranks, 0) {}

  // Writers for every non-empty shard of `map`, ascending by shard. Call once
  // per tensor, in the same order on every rank. O(non-empty shards x ranks
  // holding each), whatever the number of devices.
  std::vector<ShardWriter> Assign(const ShardMap& map, int64_t bytes_per_element);

  const std::vector<int64_t>& bytes_per_rank() const { return bytes_per_rank_; }

 private:
  std::vector<int64_t> bytes_per_rank_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_SHARD_MAP_H_
