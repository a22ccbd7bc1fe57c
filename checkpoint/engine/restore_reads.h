// Reading a restore's bytes once and handing them to every rank that needs
// them. Internal to RestoreTensors (shard_restore.cc), apart from the
// counting overload below.
//
// Several ranks often need the same shard of a tensor: replicated tensors
// (biases, norms), every tensor along a data-parallel mesh dimension, and a
// target layout coarser than the saved one. Reading it on each of them
// multiplies the load on a shared filesystem by the replication factor. So,
// per tensor and distinct shard of its restore layout, ReaderAssigner
// (layout/reshard_plan.h) picks one of the ranks holding it, balancing bytes
// read across ranks; every rank computes the same plan without talking.
//
//   1. Read: each rank reads the shards it was assigned, in file order,
//      straight into its own buffer, verifying every tile (TensorReader).
//   2. Agree: every rank learns whether all reads succeeded; on an error
//      every rank returns it and nothing is sent. So a receiver may trust
//      what it receives: its reader verified it.
//   3. Distribute: per set of ranks sharing shards (a subgroup communicator,
//      Communicator::Subgroup; the whole communicator when all ranks share),
//      small shards go in batches of a few MiB with one AllGatherBytes, large
//      ones with one in-place BroadcastBytes each. Ranks walk their sets in
//      order of first appearance in the plan, the same on every member, so
//      overlapping sets cannot deadlock.
//   4. Copy to further local device buffers of the same shard.
//
// With MESHCKPT_TRACE the restore's trace line carries disk_MB (read from the
// data file), received_MB (from other ranks) and delivered_MB (into this
// rank's buffers).
#ifndef MESHCKPT_CHECKPOINT_ENGINE_RESTORE_READS_H_
#define MESHCKPT_CHECKPOINT_ENGINE_RESTORE_READS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/chunk_source.h"

namespace meshckpt {

// What one rank's restore moved. Summed over ranks, disk_bytes is what the
// filesystem served: each distinct shard once (widened to whole checksum
// tiles), however many ranks hold it.
struct RestoreStats {
  int64_t disk_bytes = 0;       // Read from the data file by this rank.
  int64_t received_bytes = 0;   // Shards other ranks read, received.
  int64_t delivered_bytes = 0;  // Written into this rank's buffers.
  int64_t subgroups = 0;        // Sets of ranks this rank shared shards with.
};

// Who reads a shard that several ranks hold.
enum class ShardReads {
  kOnce,         // One of them, then sent to the others (the default).
  kEveryHolder,  // Each for itself, nothing sent: how restores worked
                 // before, kept to measure against (bench/ckpt_bench).
};

// RestoreTensors (shard_io.h), also filling `stats` (may be null) with this
// rank's counts. `reads` must be the same on every rank.
absl::Status RestoreTensors(CheckpointHandle& checkpoint,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options, RestoreStats* stats,
                            ShardReads reads = ShardReads::kOnce);

namespace internal {

// Collective over `comm`: steps 1-4 above for `tensors`, which every rank
// has checked against `index`. `source` is the open data file, or why it is
// not available (then this rank reads nothing and the restore fails). The
// returned status is the same on every rank.
absl::Status ReadAndDistribute(Communicator& comm, const CheckpointIndex& index,
                               absl::StatusOr<ChunkSource*> source,
                               absl::Span<const RestoreTensor> tensors,
                               const IoOptions& options, PhaseTrace* trace,
                               RestoreStats* stats, ShardReads reads);

}  // namespace internal
}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_RESTORE_READS_H_
