// The second half of a save: what each rank reports to rank 0 (its chunk
// records), the index, and the commit (steps 4 and 5 of the protocol in
// shard_io.h). Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "meshckpt/checkpoint/engine/save_plan.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/io/transfer/chunk_sink.h"

namespace meshckpt::internal {

// This rank's chunk records, as sent to rank 0 (WrittenChunk::dataset is the
// index into the plan).
struct RankReport {
  std::vector<WrittenChunk> chunks;
};
// The chunk records as bytes for Communicator::Gather, and back (Internal
// when malformed: the bytes come from our own ranks).
std::string EncodeReportChunks(const RankReport& report);
absl::StatusOr<std::vector<WrittenChunk>> DecodeReportChunks(absl::string_view bytes,
                                                             size_t plan_size);

// Rank 0: the index from every rank's chunk report.
absl::StatusOr<IndexRecord> BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& chunk_reports,
                                       const CheckpointContents& contents);

// Rank 0: makes the checkpoint exist (steps 4 and 5 of the protocol).
absl::Status Commit(const std::string& prefix, const std::string& partial,
                    IndexRecord index);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_COMMIT_H_
