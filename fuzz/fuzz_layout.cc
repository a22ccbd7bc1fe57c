// libFuzzer target: Layout::FromString (layout/layout.h), then the split
// rule over a small tensor (layout/shard_map.h). Whatever parses must round
// trip, and every local device's box and local shard must lie inside the
// tensor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<meshckpt::Layout> layout = meshckpt::Layout::FromString(text);
  if (!layout.ok()) return 0;
  absl::StatusOr<meshckpt::Layout> again =
      meshckpt::Layout::FromString(layout->ToString());
  if (!again.ok() || *again != *layout) std::abort();
  if (layout->mesh().devices_per_rank() > 4096) return 0;
  // A tensor of 7 per dimension (uneven splits, empty trailing shards).
  std::vector<int64_t> shape(layout->rank(), 7);
  absl::StatusOr<meshckpt::ShardMap> map = meshckpt::ShardMap::Create(*layout, shape);
  if (!map.ok()) return 0;
  const meshckpt::Box global = meshckpt::Box::FromShape(shape);
  for (int64_t d : layout->mesh().local_device_ids()) {
    if (!global.Contains(map->DeviceBox(d))) std::abort();
  }
  // The distinct non-empty shards of the local devices, without the loop.
  for (int64_t s : map->LocalShards()) {
    const meshckpt::Box box = map->ShardBox(s);
    if (box.empty() || !global.Contains(box)) std::abort();
  }
  return 0;
}
