// TensorReader: a box of a saved tensor filled from its chunks with every
// tile verified. Internal to RestoreTensors and CheckpointHandle::ReadBox.
//
// Where the bytes come from is the ChunkSource's business
// (io/transfer/chunk_source.h): with direct reads, pread at the offsets the
// index records. Either way a chunk's region is read about kReadPieceBytes
// at a time, each piece hashed just after it is read, while it is in cache;
// the kernel's own readahead keeps the disk busy (posix_fadvise WILLNEED on
// top made the disk busier for the same bytes).
#ifndef MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_
#define MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/transfer/chunk_source.h"
#include "meshckpt/layout/reshard_plan.h"

namespace meshckpt::internal {

class TensorReader {
 public:
  TensorReader(ChunkSource& source, const CheckpointIndex& index,
               const CheckpointIndex::Tensor& saved, const IoOptions& options,
               PhaseTrace* trace = nullptr)
      : source_(source),
        index_(index),
        saved_(saved),
        dataset_{saved.dataset, saved.dtype, saved.shape},
        options_(options),
        esize_(DTypeSize(saved.dtype)),
        trace_(trace) {}

  // Fills `target` (row-major over `target_box`, global coordinates; an
  // array of std::string for strings) from the chunks.
  absl::Status Fill(const Box& target_box, void* target);

  // Bytes read from the data file so far (whole tiles around the wanted
  // regions; for strings, the characters of whole chunks).
  int64_t bytes_read() const { return bytes_read_; }

 private:
  absl::Status Mismatch(const Box& chunk, int64_t tile) const;
  absl::Status FillPiece(const ReshardPiece& p, const Box& target_box, void* target);
  absl::Status FillInPlace(int c, const TileGrid& grid, const ReshardPiece& p,
                           const Box& target_box, void* target);
  absl::Status FillStrings(const ReshardPiece& p, const Box& target_box, void* target);
  // Reads `box` (chunk coordinates) of chunk `c` into `dst_box` of a
  // row-major buffer of `dst_shape`.
  absl::Status ReadChunkBox(int c, const Box& box, absl::Span<const int64_t> dst_shape,
                            const Box& dst_box, void* dst);

  ChunkSource& source_;
  const CheckpointIndex& index_;
  const CheckpointIndex::Tensor& saved_;
  const DatasetRef dataset_;
  const IoOptions& options_;
  int64_t esize_;
  PhaseTrace* trace_;
  int64_t bytes_read_ = 0;
  std::vector<char> buffer_;
  std::vector<uint64_t> sums_;
};

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_
