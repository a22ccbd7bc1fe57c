// Reshard planning: which parts of which saved chunks fill a target box.
//
// A checkpoint stores a tensor as chunks, boxes that lie inside the tensor,
// do not overlap and together cover it (ValidateChunkCover checks this, since
// the chunk list comes from a file). For a target box, every element belongs
// to exactly one chunk, so the pieces
//   { (c, Intersect(chunk_c, target) relative to chunk_c,
//         Intersect(chunk_c, target) relative to target) : non-empty }
// cover the target exactly once. PlanReshard returns them in chunk order.
//
// Example: chunks {[0,5)}, {[5,10)} and target [3,8) give
//   (0, [3,5) in chunk, [0,2) in target), (1, [0,3) in chunk, [2,5) in target)
//
// Reading once: when several ranks need the same shard of a restore layout
// (replication, data parallelism, or a coarser target than the save), one of
// them reads it and sends it to the others. ReaderAssigner picks that rank
// for every non-empty shard: the least-loaded rank, by bytes so far, among
// the ranks holding the shard, ties to the lower rank (the rule of
// WriterAssigner, shard_map.h), so every rank computes the same plan
// without communicating and the bytes read per rank spread by at most the
// largest shard held by several ranks.
//
// PlanReshard and ValidateChunkCover are pure functions; thread-safe.
#ifndef MESHCKPT_LAYOUT_RESHARD_PLAN_H_
#define MESHCKPT_LAYOUT_RESHARD_PLAN_H_

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt {

struct ReshardPiece {
  int64_t chunk = 0;  // Index into the chunk list.
  Box in_chunk;       // Region relative to the chunk's origin.
  Box in_target;      // The same region relative to the target's origin.
};

// OK when every chunk has the tensor's rank, lies inside `global`, no two
// non-empty chunks overlap, and together they cover `global`. Otherwise
// DataLoss describing the first problem (chunk lists come from files).
absl::Status ValidateChunkCover(const Box& global, absl::Span<const Box> chunks);

// Pieces covering `target` exactly once. `chunks` must pass
// ValidateChunkCover; FailedPrecondition when `target` is not inside the
// area they cover.
absl::StatusOr<std::vector<ReshardPiece>> PlanReshard(absl::Span<const Box> chunks,
                                                      const Box& target);

// One non-empty shard of a restore layout: who needs it and who reads it.
struct ShardRead {
  int64_t shard = 0;
  Box box;
  std::vector<int> holders;  // Ranks holding the shard, ascending.
  int reader = 0;            // One of `holders`.
};

class ReaderAssigner {
 public:
  explicit ReaderAssigner(int num_ranks) : bytes_per_rank_(num_ranks, 0) {}

  // Every non-empty shard of `map`, ascending. Call once per tensor, in the
  // same order on every rank. O(non-empty shards x ranks holding each).
  std::vector<ShardRead> Assign(const ShardMap& map, int64_t bytes_per_element);

  // Bytes assigned to each rank so far.
  const std::vector<int64_t>& bytes_per_rank() const { return bytes_per_rank_; }

 private:
  // The ranks holding each shard depend on the layout alone, not the
  // tensor: listed once per layout and shard (the walk over the mesh is
  // most of the cost when thousands of ranks hold a shard).
  const std::vector<int>& Holders(const ShardMap& map, int64_t shard);
  static void ListHolders(const ShardMap& map, int64_t shard, std::vector<int>* out);

  std::vector<int64_t> bytes_per_rank_;
  std::vector<std::pair<Layout, std::map<int64_t, std::vector<int>>>> holders_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_RESHARD_PLAN_H_
