// PlanReshard: which saved chunks cover a wanted box, and where each piece
// goes; ReaderAssigner: which rank reads each shard that several ranks need.
#include "meshckpt/layout/reshard_plan.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

absl::Status ValidateChunkCover(const Box& global, absl::Span<const Box> chunks) {
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

std::vector<ShardRead> ReaderAssigner::Assign(const ShardMap& map,
                                              int64_t bytes_per_element) {
  const Mesh& mesh = map.layout().mesh();
  const int64_t per_rank = mesh.devices_per_rank();
  std::vector<ShardRead> reads;
  map.ForEachNonEmptyShard([&](int64_t s) {
    ShardRead r;
    r.shard = s;
    r.box = map.ShardBox(s);
    // One device per rank holding the shard, rank by rank (ascending).
    for (int64_t device = map.NextDeviceOfShard(s, 0); device >= 0;) {
      const int rank = mesh.RankOfDevice(device);
      r.holders.push_back(rank);
      device = map.NextDeviceOfShard(s, (rank + 1) * per_rank);
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
