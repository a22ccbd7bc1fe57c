// Save planning: datasets, writer ranks and the buffer of every shard.
#include "meshckpt/checkpoint/engine/save_plan.h"

#include <xxhash.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"

namespace meshckpt::internal {
namespace {

// HDF5 chunks must stay below 4 GiB; we stay well below.
constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;
// Strings have no fixed size; a nominal one keeps writer balance sensible.
constexpr int64_t kNominalStringBytes = 32;

// Shards cut only along dimension 0 (or not at all) are runs of whole rows,
// already contiguous in a contiguous dataset. Otherwise HDF5 chunks shaped
// like the shards keep each rank's data in one contiguous region.
std::vector<int64_t> ChooseChunkShape(const ShardMap& map, int64_t element_size) {
  bool inner_split = false;
  for (size_t d = 1; d < map.grid_shape().size(); ++d) {
    inner_split |= map.grid_shape()[d] > 1;
  }
  if (!inner_split) return {};
  std::vector<int64_t> chunk = map.block_shape();
  for (int64_t& c : chunk) c = std::max<int64_t>(c, 1);
  auto bytes = [&] {
    int64_t n = element_size;
    for (int64_t c : chunk) n *= c;
    return n;
  };
  while (bytes() > kMaxChunkBytes) {
    auto largest = std::max_element(chunk.begin(), chunk.end());
    *largest = (*largest + 1) / 2;
  }
  return chunk;
}

// The layout as rank 0 sees it, so collective attribute writes agree.
std::string CanonicalLayoutString(const Layout& layout) {
  return layout.WithMesh(layout.mesh().ForRank(0).value()).value().ToString();
}

}  // namespace

const void* WriterData(const PlannedTensor& p, const ShardWriter& w) {
  const SaveTensor& t = *p.tensor;
  if (!t.device_data.empty()) {
    return t.device_data[w.device - t.layout.mesh().local_device_range().begin];
  }
  const auto it = std::lower_bound(p.local_shards.begin(), p.local_shards.end(), w.shard);
  return t.shard_data[it - p.local_shards.begin()];
}

absl::Status ValidateSaveInputs(const Communicator& comm,
                                absl::Span<const SaveTensor> tensors) {
  absl::flat_hash_set<std::string> keys, paths;
  for (const SaveTensor& t : tensors) {
    const std::string& path = t.dataset.empty() ? t.key : t.dataset;
    MESHCKPT_RETURN_IF_ERROR(ValidateDatasetPath(t.key, path));
    if (!keys.insert(t.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor key '", t.key, "' appears twice"));
    }
    if (!paths.insert(path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.key, "': dataset path '", path, "' is used twice"));
    }
    MESHCKPT_RETURN_IF_ERROR(CheckLayoutFitsComm(t.key, t.layout, comm));
    absl::StatusOr<ShardMap> map = ShardMap::Create(t.layout, t.shape);
    if (!map.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.key, "': ", map.status().message()));
    }
    MESHCKPT_RETURN_IF_ERROR(CheckBuffers(t.key, *map, t.device_data, t.shard_data));
  }
  // A dataset cannot also be a group holding another one.
  for (const std::string& p : paths) {
    for (size_t slash = p.find('/'); slash != std::string::npos;
         slash = p.find('/', slash + 1)) {
      if (paths.contains(p.substr(0, slash))) {
        return absl::InvalidArgumentError(absl::StrCat("dataset path '",
                                                       p.substr(0, slash),
                                                       "' is both a tensor and a "
                                                       "group holding '",
                                                       p, "'"));
      }
    }
  }
  return absl::OkStatus();
}

uint64_t SaveFingerprint(absl::Span<const SaveTensor> tensors) {
  std::string text;
  for (const SaveTensor& t : tensors) {
    absl::StrAppend(&text, t.key, "|", t.dataset, "|", static_cast<int>(t.dtype), "|");
    for (int64_t s : t.shape) absl::StrAppend(&text, s, ",");
    for (const std::string& s : t.layout.sharding_specs()) {
      absl::StrAppend(&text, s, ",");
    }
    for (const MeshDimension& d : t.layout.mesh().dims()) {
      absl::StrAppend(&text, d.name, "=", d.size, ",");
    }
    text += "\n";
  }
  return XXH3_64bits(text.data(), text.size());
}

std::vector<PlannedTensor> PlanSave(int num_ranks, absl::Span<const SaveTensor> tensors) {
  std::vector<const SaveTensor*> order;
  for (const SaveTensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const SaveTensor* a, const SaveTensor* b) { return a->key < b->key; });
  WriterAssigner assigner(num_ranks);
  std::vector<PlannedTensor> plan;
  for (const SaveTensor* t : order) {
    ShardMap map = ShardMap::Create(t->layout, t->shape).value();  // Validated.
    const int64_t esize = DTypeSize(t->dtype);
    std::vector<ShardWriter> writers =
        assigner.Assign(map, esize > 0 ? esize : kNominalStringBytes);
    std::vector<int64_t> chunk = ChooseChunkShape(map, std::max<int64_t>(esize, 1));
    std::vector<int64_t> local;
    if (t->device_data.empty()) local = map.LocalShards();
    plan.push_back({t, t->dataset.empty() ? t->key : t->dataset, std::move(map),
                    std::move(writers), std::move(chunk), esize, std::move(local)});
  }
  return plan;
}

DatasetSpec DatasetSpecOf(const PlannedTensor& p) {
  return {p.dataset,
          p.tensor->dtype,
          p.tensor->shape,
          p.chunk_shape,
          {{"dtype", std::string(DTypeName(p.tensor->dtype))},
           {"layout", CanonicalLayoutString(p.tensor->layout)},
           {"key", p.tensor->key}}};
}

}  // namespace meshckpt::internal
