// The second half of a save: what each rank reports to rank 0 (chunk boxes,
// checksums, string payloads), the string datasets, the index, and the
// commit (steps 4 and 5 of the protocol in shard_io.h). Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "checkpoint/engine/save_plan.h"
#include "io/transfer/direct_file.h"
#include "io/format/index.h"

namespace meshckpt::internal {

// This rank's chunk records and string payloads, as sent to rank 0.
struct RankReport {
  struct Chunk {
    size_t tensor;  // Index into the plan.
    ChunkRecord record;
  };
  std::vector<Chunk> chunks;
  std::string strings;  // See AddStringChunk.
};
// The chunk records as bytes for Communicator::Gather, and back (Internal
// when malformed: the bytes come from our own ranks).
std::string EncodeReportChunks(const RankReport& report);
absl::StatusOr<std::vector<RankReport::Chunk>> DecodeReportChunks(absl::string_view bytes,
                                                                  size_t plan_size);

// Appends a chunk record for `box` of plan entry `tensor`, written by
// `rank`, to the report.
ChunkRecord* AddChunk(RankReport* report, size_t tensor, const Box& box, int rank);
// Records the strings of a shard (checksum and payload for rank 0).
void AddStringChunk(RankReport* report, size_t tensor, const PlannedTensor& p,
                    const ShardWriter& w, int rank);
// The full report, hashing every numeric chunk this rank writes: what the
// MPI-IO path computes beside its writes.
RankReport BuildReport(int rank, const std::vector<PlannedTensor>& plan,
                       int64_t tile_bytes);

// Rank 0, after the numeric data is written and HDF5 has closed the file:
// creates and fills the string datasets from every rank's payload.
absl::Status WriteStrings(const std::string& partial,
                          const std::vector<PlannedTensor>& plan,
                          const std::vector<std::string>& string_reports);

// Per plan entry, the storage blocks of its dataset (empty when unknown).
using StorageTable = std::vector<std::vector<StorageBlock>>;
std::string EncodeStorageTable(const StorageTable& table);
absl::StatusOr<StorageTable> DecodeStorageTable(absl::string_view bytes,
                                                size_t entries);

// Rank 0: the index from every rank's chunk report; chunk file locations
// come from `storage` when it has them.
absl::StatusOr<IndexRecord> BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& chunk_reports,
                                       const StorageTable& storage,
                                       const CheckpointContents& contents);

// Rank 0: makes the checkpoint exist (steps 4 and 5 of the protocol).
absl::Status Commit(const std::string& prefix, const std::string& partial,
                    IndexRecord index);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_
