// Save planning: datasets, writer ranks and the buffer of every shard.
#include "meshckpt/checkpoint/engine/save_plan.h"

#include <xxhash.h>

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

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

// The cells of a grid of `cell` shapes (HDF5 chunks; empty: one cell)
// that meet `box`, each cut to the box.
std::vector<Box> CellsOf(const Box& box, const std::vector<int64_t>& cell) {
  if (cell.empty() || box.empty()) return {box};
  const int r = box.rank();
  std::vector<int64_t> first(r), last(r), at(r);
  for (int d = 0; d < r; ++d) {
    first[d] = box.origin()[d] / cell[d];
    last[d] = (box.origin()[d] + box.shape()[d] - 1) / cell[d];
  }
  at = first;
  std::vector<Box> out;
  while (true) {
    std::vector<int64_t> origin(r), shape(r);
    for (int d = 0; d < r; ++d) {
      const int64_t lo = std::max(box.origin()[d], at[d] * cell[d]);
      const int64_t hi =
          std::min(box.origin()[d] + box.shape()[d], (at[d] + 1) * cell[d]);
      origin[d] = lo;
      shape[d] = hi - lo;
    }
    out.push_back(Box::Unchecked(std::move(origin), std::move(shape)));
    int d = r - 1;
    for (; d >= 0; --d) {
      if (++at[d] <= last[d]) break;
      at[d] = first[d];
    }
    if (d < 0) return out;
  }
}

// Writers for ChunkPolicy::max_chunk_bytes: every non-empty shard cut into
// pieces, each piece to the least-loaded rank (ties: the lower rank).
class PieceAssigner {
 public:
  explicit PieceAssigner(int num_ranks) {
    for (int r = 0; r < num_ranks; ++r) load_.push({0, r});
  }
  std::vector<ShardWriter> Assign(const ShardMap& map, int64_t esize, int64_t max_bytes,
                                  const std::vector<int64_t>& hdf5_chunk) {
    std::vector<ShardWriter> writers;
    map.ForEachNonEmptyShard([&](int64_t shard) {
      const Box shard_box = map.ShardBox(shard);
      std::vector<Box> pieces;
      if (esize == 0) {
        pieces = {shard_box};  // Strings: one tile per chunk, written at create.
      } else {
        for (const Box& cell : CellsOf(shard_box, hdf5_chunk)) {
          for (Box& b : SplitBox(cell, esize, max_bytes)) pieces.push_back(std::move(b));
        }
      }
      for (Box& b : pieces) {
        auto [bytes, rank] = load_.top();
        load_.pop();
        bytes += b.num_elements() * (esize > 0 ? esize : kNominalStringBytes);
        load_.push({bytes, rank});
        writers.push_back({shard, -1, rank, std::move(b)});
      }
    });
    return writers;
  }

 private:
  // Bytes so far and rank; the top is the least loaded, then the lowest rank.
  std::priority_queue<std::pair<int64_t, int>, std::vector<std::pair<int64_t, int>>,
                      std::greater<>>
      load_;
};

}  // namespace

std::vector<Box> SplitBox(const Box& box, int64_t element_size, int64_t max_bytes) {
  if (box.empty() || box.rank() == 0 || box.num_elements() * element_size <= max_bytes) {
    return {box};
  }
  const int r = box.rank();
  // The outermost dimension d whose slices (one index of d, all of the
  // dimensions after it) fit; every dimension before d is cut to one index.
  int d = r - 1;
  int64_t slice = element_size;  // Bytes of one index of dimension d.
  while (d > 0 && slice * box.shape()[d] <= max_bytes) {
    slice *= box.shape()[d];
    --d;
  }
  const int64_t run = std::max<int64_t>(1, max_bytes / slice);
  std::vector<int64_t> at(box.origin().begin(), box.origin().begin() + d);
  std::vector<Box> out;
  while (true) {
    for (int64_t i = 0; i < box.shape()[d]; i += run) {
      std::vector<int64_t> origin = box.origin(), shape = box.shape();
      for (int k = 0; k < d; ++k) {
        origin[k] = at[k];
        shape[k] = 1;
      }
      origin[d] += i;
      shape[d] = std::min(run, box.shape()[d] - i);
      out.push_back(Box::Unchecked(std::move(origin), std::move(shape)));
    }
    int k = d - 1;
    for (; k >= 0; --k) {
      if (++at[k] < box.origin()[k] + box.shape()[k]) break;
      at[k] = box.origin()[k];
    }
    if (k < 0) return out;
  }
}

const void* WriterData(const PlannedTensor& p, const ShardWriter& w) {
  const SaveTensor& t = *p.tensor;
  if (t.device_data.empty() && t.shard_data.empty()) return nullptr;
  if (!t.device_data.empty()) {
    return t.device_data[w.device - t.layout.mesh().local_device_range().begin];
  }
  const auto it = std::lower_bound(p.local_shards.begin(), p.local_shards.end(), w.shard);
  return t.shard_data[it - p.local_shards.begin()];
}

absl::Status ValidateSaveInputs(const Communicator& comm,
                                absl::Span<const SaveTensor> tensors,
                                bool buffers_optional) {
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
    if (!buffers_optional || !t.device_data.empty() || !t.shard_data.empty()) {
      MESHCKPT_RETURN_IF_ERROR(CheckBuffers(t.key, *map, t.device_data, t.shard_data));
    }
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

std::vector<PlannedTensor> PlanSave(int num_ranks, absl::Span<const SaveTensor> tensors,
                                    const ChunkPolicy& policy) {
  std::vector<const SaveTensor*> order;
  for (const SaveTensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const SaveTensor* a, const SaveTensor* b) { return a->key < b->key; });
  WriterAssigner assigner(num_ranks);
  PieceAssigner pieces(num_ranks);
  std::vector<PlannedTensor> plan;
  for (const SaveTensor* t : order) {
    ShardMap map = ShardMap::Create(t->layout, t->shape).value();  // Validated.
    const int64_t esize = DTypeSize(t->dtype);
    std::vector<int64_t> chunk = ChooseChunkShape(map, std::max<int64_t>(esize, 1));
    std::vector<ShardWriter> writers =
        policy.max_chunk_bytes > 0
            ? pieces.Assign(map, esize, policy.max_chunk_bytes, chunk)
            : assigner.Assign(map, esize > 0 ? esize : kNominalStringBytes);
    std::vector<int64_t> local;
    if (t->device_data.empty() && !t->shard_data.empty()) local = map.LocalShards();
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
