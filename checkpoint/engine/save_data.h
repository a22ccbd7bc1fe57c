// The data half of a save: the plan as the chunk sink sees it
// (io/transfer/chunk_sink.h, which creates the file and moves the bytes by
// the transfer mode) and this rank's writes through it. Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_

#include <vector>

#include "absl/status/status.h"
#include "meshckpt/checkpoint/engine/save_plan.h"
#include "meshckpt/io/transfer/chunk_sink.h"
#include "meshckpt/io/transfer/io_options.h"

namespace meshckpt::internal {

// Per plan entry, in plan order: its dataset and every chunk (one per
// writer, in the writers' order), with this rank's buffers.
std::vector<SinkDataset> SinkDatasetsOf(int rank, const std::vector<PlannedTensor>& plan);

// Writes this rank's numeric chunks through `sink` in plan order, calling
// io.progress and reaching the during_data_write fault point after each one
// with data. Stops at the first error, which names the tensor and chunk.
// Not collective; the sink must still be closed.
absl::Status WriteMyChunks(int rank, const std::vector<PlannedTensor>& plan,
                           ChunkSink& sink, const IoOptions& io);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_
