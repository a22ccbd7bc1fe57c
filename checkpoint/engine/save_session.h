// One save between its start and its commit, in the four steps a
// synchronous save (SaveTensors) runs back to back and an async save
// (async_save.h) splits across two threads:
//   Begin   collective: validate, plan, name the `.partial-<id>` file, on
//           the caller's thread;
//   Create  collective: create that file with every dataset (strings
//           written), reserving its space;
//   Write   not collective: this rank's numeric chunks, in order;
//   Finish  collective: close, fsync, agree, commit (shard_io.h's protocol),
//           on whatever communicator the calling thread owns.
// Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_SESSION_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/checkpoint/engine/save_plan.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/chunk_sink.h"

namespace meshckpt::internal {

class SaveSession {
 public:
  // A numeric chunk this rank writes: chunks[chunk] of datasets[dataset].
  struct MyChunk {
    size_t dataset;
    size_t chunk;
    int64_t bytes;
  };
  // Lets the caller point chunks at other memory (an async save's staging)
  // before the sink is created; called with this rank's numeric chunks
  // (string chunks are in `datasets` too).
  using Redirect = std::function<void(const std::vector<MyChunk>& mine,
                                      std::vector<SinkDataset>& datasets)>;

  // Collective over `comm`. Keeps its own copy of `tensors` and `contents`;
  // the buffers they point to must stay unchanged until the chunks reading
  // them are written (strings: until Create). Creates nothing on disk.
  // With policy.max_chunk_bytes, tensors may come without buffers, and
  // `redirect` must then point every chunk of this rank at its bytes.
  static absl::StatusOr<std::unique_ptr<SaveSession>> Begin(
      Communicator& comm, const std::string& prefix, absl::Span<const SaveTensor> tensors,
      const CheckpointContents& contents, const IoOptions& io,
      const Redirect& redirect = nullptr, const ChunkPolicy& policy = {});
  ~SaveSession();

  // Collective over `comm` (the ranks of Begin's, on this thread), once,
  // before Write. Same status on every rank; on error nothing is left on
  // disk and Finish must not be called.
  absl::Status Create(Communicator& comm);

  // This rank's numeric chunks, in the order Write must take them.
  const std::vector<MyChunk>& my_chunks() const { return mine_; }
  // Writes my_chunks()[begin, end), calling io.progress and reaching the
  // during_data_write fault point after each. Errors name the tensor and
  // chunk; after one, later calls return it.
  absl::Status Write(size_t begin, size_t end);

  // Collective over `comm` (the ranks of Begin's, on this thread): closes
  // the sink, makes the data durable, agrees (`local` is this rank's error
  // so far, e.g. from Write) and commits. Same status on every rank; on
  // error the partial file is removed. Call once.
  absl::Status Finish(Communicator& comm, absl::Status local);

  const std::string& prefix() const { return prefix_; }
  int64_t my_bytes() const { return my_bytes_; }
  // The plan, in key order: MyChunk::dataset indexes it.
  const std::vector<PlannedTensor>& plan() const { return plan_; }

 private:
  SaveSession() = default;

  int rank_ = 0;
  std::string prefix_;
  std::string partial_;
  std::vector<SaveTensor> tensors_;  // plan_ points into these.
  std::vector<PlannedTensor> plan_;
  CheckpointContents contents_;  // Its mesh is set.
  IoOptions io_;
  std::vector<SinkDataset> datasets_;  // Until Create hands them to the sink.
  std::unique_ptr<ChunkSink> sink_;
  std::vector<MyChunk> mine_;
  int64_t my_bytes_ = 0;
  int64_t written_bytes_ = 0;
  absl::Status write_status_;
  bool finished_ = false;
};

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_SESSION_H_
