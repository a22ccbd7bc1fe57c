// What a save writes: validation of SaveTensors' arguments and the plan
// (which rank writes which shard of which tensor, chunk shapes). Internal to
// save_session.cc and its helpers; every function here is deterministic, so
// all ranks compute the same plan without communication.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_PLAN_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt::internal {

struct PlannedTensor {
  const SaveTensor* tensor;
  std::string dataset;
  ShardMap map;
  std::vector<ShardWriter> writers;
  std::vector<int64_t> chunk_shape;  // Empty: contiguous.
  int64_t element_size;              // 0 for strings.
  // ShardMap::LocalShards(), when the buffers are shard_data.
  std::vector<int64_t> local_shards;
};

// How PlanSave cuts tensors into chunks and picks their writers.
struct ChunkPolicy {
  // 0: one chunk per distinct non-empty shard, written by a rank holding it
  // (a save from memory). Above 0: numeric shards are cut into chunks of at
  // most this many bytes (within one HDF5 chunk each), and every chunk goes
  // to the rank given the fewest bytes so far, whether or not it holds the
  // shard: for writers that fetch the bytes themselves and pass no buffers
  // (stream_rewrite.h). String shards stay whole.
  int64_t max_chunk_bytes = 0;
};

// InvalidArgument for bad keys, paths, layouts or null buffers; with
// `buffers_optional`, a tensor may also come with no buffers at all.
absl::Status ValidateSaveInputs(const Communicator& comm,
                                absl::Span<const SaveTensor> tensors,
                                bool buffers_optional = false);
// What every rank must agree on: keys, dtypes, shapes, layouts.
uint64_t SaveFingerprint(absl::Span<const SaveTensor> tensors);
// Tensors in key order with their writers and chunk shapes.
std::vector<PlannedTensor> PlanSave(int num_ranks, absl::Span<const SaveTensor> tensors,
                                    const ChunkPolicy& policy = {});
// `box` cut into boxes of at most `max_bytes` (elements of `element_size`),
// row-major: runs along the outermost dimension whose slices fit, each
// other dimension before it one index wide. `box` itself when it fits.
std::vector<Box> SplitBox(const Box& box, int64_t element_size, int64_t max_bytes);

// The buffer `w` (a writer on this rank) writes from; null when the tensor
// has no buffers (ChunkPolicy::max_chunk_bytes).
const void* WriterData(const PlannedTensor& p, const ShardWriter& w);
// The dataset as created in the data file: shape, chunks, attributes.
DatasetSpec DatasetSpecOf(const PlannedTensor& p);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_PLAN_H_
