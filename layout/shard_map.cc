// ShardMap: the shard and box of every device for a layout and shape.
#include "meshckpt/layout/shard_map.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt {

absl::StatusOr<ShardMap> ShardMap::Create(Layout layout,
                                          std::vector<int64_t> global_shape) {
  if (layout.rank() != static_cast<int>(global_shape.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout '", layout.ToString(), "' has rank ", layout.rank(),
                     " but the tensor has rank ", global_shape.size()));
  }
  MESHCKPT_RETURN_IF_ERROR(CheckedNumElements(global_shape).status());
  const size_t r = global_shape.size();
  std::vector<int64_t> grid(r), block(r), nonempty(r);
  int64_t num_shards = 1, num_nonempty = 1;
  for (size_t d = 0; d < r; ++d) {
    grid[d] = layout.NumShards(static_cast<int>(d));
    block[d] = SplitBlockSize(global_shape[d], grid[d]);
    // Shard i is non-empty exactly when i * b < n.
    nonempty[d] = block[d] == 0 ? 0 : SplitBlockSize(global_shape[d], block[d]);
    num_shards *= grid[d];        // <= number of mesh devices.
    num_nonempty *= nonempty[d];  // <= num_shards.
  }
  Box global = Box::FromShape(std::move(global_shape));
  return ShardMap(std::move(layout), std::move(global), std::move(grid), std::move(block),
                  std::move(nonempty), num_shards, num_nonempty);
}

Box ShardMap::ShardBox(int64_t shard) const {
  const int r = global_box_.rank();
  std::vector<int64_t> origin(r), shape(r);
  for (int d = r - 1; d >= 0; --d) {
    IndexInterval iv = SplitShard(global_box_.shape()[d], grid_[d], shard % grid_[d]);
    shard /= grid_[d];
    origin[d] = iv.origin();
    shape[d] = iv.size();
  }
  return Box::Unchecked(std::move(origin), std::move(shape));
}

int64_t ShardMap::ShardOfDevice(int64_t device_id) const {
  const std::vector<int64_t> coords = layout_.mesh().DeviceCoords(device_id);
  int64_t shard = 0;
  for (int d = 0; d < global_box_.rank(); ++d) {
    std::optional<int> m = layout_.MeshDimOf(d);
    shard = shard * grid_[d] + (m.has_value() ? coords[*m] : 0);
  }
  return shard;
}

std::vector<int64_t> ShardMap::DevicesOfShard(int64_t shard) const {
  const Mesh& mesh = layout_.mesh();
  // Coordinates fixed by the shard on sharded mesh dims; the rest are free.
  std::vector<int64_t> coords(mesh.num_dims(), 0);
  std::vector<bool> fixed(mesh.num_dims(), false);
  for (int d = global_box_.rank() - 1; d >= 0; --d) {
    const int64_t c = shard % grid_[d];
    shard /= grid_[d];
    if (std::optional<int> m = layout_.MeshDimOf(d)) {
      coords[*m] = c;
      fixed[*m] = true;
    }
  }
  std::vector<int64_t> devices;
  while (true) {  // Odometer over the free dims, last varying fastest.
    devices.push_back(mesh.DeviceAt(coords));
    int i = mesh.num_dims() - 1;
    for (; i >= 0; --i) {
      if (fixed[i]) continue;
      if (++coords[i] < mesh.dims()[i].size) break;
      coords[i] = 0;
    }
    if (i < 0) break;
  }
  return devices;  // Row-major odometer order is ascending device id.
}

int64_t ShardMap::NextDeviceOfShard(int64_t shard, int64_t from) const {
  const Mesh& mesh = layout_.mesh();
  if (from >= mesh.num_devices()) return -1;
  const int m = mesh.num_dims();
  std::vector<int64_t> want(m, -1);  // Per mesh dim: the shard's coordinate.
  for (int d = global_box_.rank() - 1; d >= 0; --d) {
    const int64_t c = shard % grid_[d];
    shard /= grid_[d];
    if (std::optional<int> md = layout_.MeshDimOf(d)) want[*md] = c;
  }
  // Smallest y >= x (row-major order) with y = want on the fixed dims.
  std::vector<int64_t> x = mesh.DeviceCoords(std::max<int64_t>(from, 0));
  int j = 0;  // First fixed dim where x differs.
  while (j < m && (want[j] < 0 || x[j] == want[j])) ++j;
  if (j == m) return std::max<int64_t>(from, 0);
  int rest;  // Dims from here on take their smallest allowed value.
  if (x[j] < want[j]) {
    x[j] = want[j];
    rest = j + 1;
  } else {  // Carry into the last free dim before j that can still grow.
    int i = j - 1;
    while (i >= 0 && (want[i] >= 0 || x[i] + 1 == mesh.dims()[i].size)) --i;
    if (i < 0) return -1;
    ++x[i];
    rest = i + 1;
  }
  for (int k = rest; k < m; ++k) x[k] = std::max<int64_t>(want[k], 0);
  return mesh.DeviceAt(x);
}

std::vector<int64_t> ShardMap::ShardsHeldBy(DeviceRange devices) const {
  std::vector<int64_t> shards;
  if (devices.size() <= num_nonempty_) {  // Fewer devices than shards.
    for (int64_t d = devices.begin; d < devices.end; ++d) {
      const int64_t s = ShardOfDevice(d);
      if (!ShardBox(s).empty()) shards.push_back(s);
    }
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    return shards;
  }
  ForEachNonEmptyShard([&](int64_t s) {
    const int64_t d = NextDeviceOfShard(s, devices.begin);
    if (d >= 0 && d < devices.end) shards.push_back(s);
  });
  return shards;
}

std::vector<ShardWriter> WriterAssigner::Assign(const ShardMap& map,
                                                int64_t bytes_per_element) {
  const Mesh& mesh = map.layout().mesh();
  const int64_t per_rank = mesh.devices_per_rank();
  std::vector<ShardWriter> writers;
  map.ForEachNonEmptyShard([&](int64_t s) {
    Box box = map.ShardBox(s);
    int best_rank = -1;
    int64_t best_device = -1;
    // The lowest device of each rank holding the shard, rank by rank.
    for (int64_t device = map.NextDeviceOfShard(s, 0); device >= 0;) {
      const int rank = mesh.RankOfDevice(device);
      if (best_rank < 0 || bytes_per_rank_[rank] < bytes_per_rank_[best_rank]) {
        best_rank = rank;
        best_device = device;
      }
      device = map.NextDeviceOfShard(s, (rank + 1) * per_rank);
    }
    bytes_per_rank_[best_rank] += box.num_elements() * bytes_per_element;
    writers.push_back({s, best_device, best_rank, std::move(box)});
  });
  return writers;
}

}  // namespace meshckpt
