// Reshard plans: the chunks covering a box, and who reads each shared shard.
#include "meshckpt/layout/reshard_plan.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

namespace {

// True when the non-empty chunks are exactly the cells of a grid: per
// dimension their intervals partition the tensor's extent, and every cell
// of the product appears once. What every save writes (a shard grid), and
// checked in O(chunks log chunks) where the general check below compares
// every pair: a tensor split over 16k ranks has 16k chunks, and every rank
// validates the whole index when it opens a checkpoint. False says nothing:
// the general check then decides, and words the error.
bool IsGridCover(const Box& global, absl::Span<const Box> chunks) {
  const int rank = global.rank();
  std::vector<const Box*> full;
  for (const Box& c : chunks) {
    if (c.rank() != rank || !global.Contains(c)) return false;
    if (!c.empty()) full.push_back(&c);
  }
  if (full.empty()) return false;
  // Per dimension, the distinct (lo, hi) of the chunks, sorted.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> cuts(rank);
  int64_t cells = 1;
  for (int d = 0; d < rank; ++d) {
    for (const Box* c : full) {
      cuts[d].emplace_back(c->origin()[d], c->origin()[d] + c->shape()[d]);
    }
    std::sort(cuts[d].begin(), cuts[d].end());
    cuts[d].erase(std::unique(cuts[d].begin(), cuts[d].end()), cuts[d].end());
    int64_t at = global.origin()[d];
    for (const auto& [lo, hi] : cuts[d]) {
      if (lo != at) return false;  // A gap or an overlap along d.
      at = hi;
    }
    if (at != global.origin()[d] + global.shape()[d]) return false;
    cells *= static_cast<int64_t>(cuts[d].size());
    if (cells > static_cast<int64_t>(full.size())) return false;
  }
  if (cells != static_cast<int64_t>(full.size())) return false;
  std::vector<bool> seen(cells, false);
  for (const Box* c : full) {
    int64_t cell = 0;
    for (int d = 0; d < rank; ++d) {
      const std::pair<int64_t, int64_t> iv{c->origin()[d],
                                           c->origin()[d] + c->shape()[d]};
      cell = cell * static_cast<int64_t>(cuts[d].size()) +
             (std::lower_bound(cuts[d].begin(), cuts[d].end(), iv) - cuts[d].begin());
    }
    if (seen[cell]) return false;
    seen[cell] = true;
  }
  return true;
}

}  // namespace

absl::Status ValidateChunkCover(const Box& global, absl::Span<const Box> chunks) {
  if (IsGridCover(global, chunks)) return absl::OkStatus();
  int64_t covered = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Box& c = chunks[i];
    if (c.rank() != global.rank()) {
      return absl::DataLossError(
          absl::StrCat("chunk ", i, " ", c.ToString(), " has rank ", c.rank(),
                       " but the tensor has rank ", global.rank()));
    }
    if (!global.Contains(c)) {
      return absl::DataLossError(absl::StrCat("chunk ", i, " ", c.ToString(),
                                              " lies outside the tensor ",
                                              global.ToString()));
    }
    if (c.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      if (!Intersect(c, chunks[j]).empty()) {
        return absl::DataLossError(absl::StrCat("chunks ", j, " ", chunks[j].ToString(),
                                                " and ", i, " ", c.ToString(),
                                                " overlap"));
      }
    }
    covered += c.num_elements();  // Disjoint and inside: no overflow.
  }
  if (covered != global.num_elements()) {
    return absl::DataLossError(absl::StrCat("chunks cover ", covered, " of the ",
                                            global.num_elements(), " elements of tensor ",
                                            global.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReshardPiece>> PlanReshard(absl::Span<const Box> chunks,
                                                      const Box& target) {
  std::vector<ReshardPiece> pieces;
  int64_t covered = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].rank() != target.rank()) {
      return absl::FailedPreconditionError(
          absl::StrCat("target box ", target.ToString(), " has rank ", target.rank(),
                       " but chunk ", i, " has rank ", chunks[i].rank()));
    }
    Box common = Intersect(chunks[i], target);
    if (common.empty()) continue;
    covered += common.num_elements();
    pieces.push_back({static_cast<int64_t>(i), RelativeTo(common, chunks[i]),
                      RelativeTo(common, target)});
  }
  if (covered != target.num_elements()) {
    return absl::FailedPreconditionError(
        absl::StrCat("saved chunks cover ", covered, " of the ", target.num_elements(),
                     " elements of target box ", target.ToString()));
  }
  return pieces;
}

void ReaderAssigner::ListHolders(const ShardMap& map, int64_t shard,
                                 std::vector<int>* out) {
  // One device per rank holding the shard, rank by rank (ascending).
  const Mesh& mesh = map.layout().mesh();
  const int64_t per_rank = mesh.devices_per_rank();
  for (int64_t device = map.NextDeviceOfShard(shard, 0); device >= 0;) {
    const int rank = mesh.RankOfDevice(device);
    out->push_back(rank);
    device = map.NextDeviceOfShard(shard, (rank + 1) * per_rank);
  }
}

const std::vector<int>& ReaderAssigner::Holders(const ShardMap& map, int64_t shard) {
  auto known = std::find_if(holders_.begin(), holders_.end(),
                            [&](const auto& e) { return e.first == map.layout(); });
  if (known == holders_.end()) {
    holders_.emplace_back(map.layout(), std::map<int64_t, std::vector<int>>());
    known = holders_.end() - 1;
  }
  auto [it, added] = known->second.try_emplace(shard);
  if (added) ListHolders(map, shard, &it->second);
  return it->second;
}

std::vector<ShardRead> ReaderAssigner::Assign(const ShardMap& map,
                                              int64_t bytes_per_element) {
  // Devices holding each shard: few (a split tensor) are cheaper to list
  // than to look up.
  constexpr int64_t kCacheFrom = 64;
  const int64_t replicas = map.layout().mesh().num_devices() / map.num_shards();
  std::vector<ShardRead> reads;
  map.ForEachNonEmptyShard([&](int64_t s) {
    ShardRead r;
    r.shard = s;
    r.box = map.ShardBox(s);
    if (replicas < kCacheFrom) {
      ListHolders(map, s, &r.holders);
    } else {
      r.holders = Holders(map, s);
    }
    r.reader = r.holders.front();
    for (int rank : r.holders) {
      if (bytes_per_rank_[rank] < bytes_per_rank_[r.reader]) r.reader = rank;
    }
    bytes_per_rank_[r.reader] += r.box.num_elements() * bytes_per_element;
    reads.push_back(std::move(r));
  });
  return reads;
}

}  // namespace meshckpt
