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

// InvalidArgument for bad keys, paths, layouts or null buffers.
absl::Status ValidateSaveInputs(const Communicator& comm,
                                absl::Span<const SaveTensor> tensors);
// What every rank must agree on: keys, dtypes, shapes, layouts.
uint64_t SaveFingerprint(absl::Span<const SaveTensor> tensors);
// Tensors in key order with their writers and chunk shapes.
std::vector<PlannedTensor> PlanSave(int num_ranks, absl::Span<const SaveTensor> tensors);

// The buffer `w` (a writer on this rank) writes from.
const void* WriterData(const PlannedTensor& p, const ShardWriter& w);
// The dataset as created in the data file: shape, chunks, attributes.
DatasetSpec DatasetSpecOf(const PlannedTensor& p);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_PLAN_H_
