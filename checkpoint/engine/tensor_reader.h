// Reading saved chunks back: where the bytes come from (DataSource) and how
// a box of a tensor is filled from them with every tile verified
// (TensorReader). Internal to RestoreTensors and CheckpointReader.
//
// A chunk whose storage is known -- recorded in the index, or located
// through HDF5 for checkpoints that do not record it -- is read with
// DirectFile (pread at the offsets, verifying each piece just after reading
// it; the kernel's own readahead keeps the disk busy -- posix_fadvise
// WILLNEED on top made the disk busier for the same bytes). Anything else
// (strings, filtered or compact storage, TransferMode::kIndependent and
// kCollective restores) is read through HDF5.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_
#define MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/phase_trace.h"
#include "checkpoint/engine/checkpoint_index.h"
#include "checkpoint/engine/shard_io.h"
#include "io/format/checksum.h"
#include "io/transfer/data_file.h"
#include "io/transfer/direct_file.h"
#include "layout/reshard_plan.h"

namespace meshckpt::internal {

// The open data file of a checkpoint. Used by one thread at a time.
class DataSource {
 public:
  // Direct reads; HDF5 (POSIX driver, this process only) opened on first
  // need. Not collective.
  static absl::StatusOr<std::unique_ptr<DataSource>> OpenDirect(const std::string& path);
  // Everything through `hdf5` (e.g. an MPI-IO reader opened collectively).
  DataSource(std::string path, std::unique_ptr<DataFileReader> hdf5);
  ~DataSource();

  const std::string& path() const { return path_; }
  DirectFile* direct() const { return direct_.get(); }
  absl::StatusOr<DataFileReader*> Hdf5();
  // The HDF5 dataset of `t` (DataLoss when missing or mismatched).
  absl::StatusOr<int> Dataset(const CheckpointIndex::Tensor& t);
  // Where chunk `c` of `t` is when it can be read directly: from the index,
  // else (direct sources) from HDF5; nullopt means read through HDF5.
  absl::StatusOr<std::optional<StorageBlock>> ChunkStorage(const CheckpointIndex::Tensor& t,
                                                           int c);
  // Closes both files (collective when the HDF5 reader is).
  absl::Status Close();

 private:
  std::string path_;
  std::unique_ptr<DirectFile> direct_;
  std::unique_ptr<DataFileReader> hdf5_;
  std::map<std::string, std::vector<StorageBlock>> located_;  // By dataset.
};

class TensorReader {
 public:
  TensorReader(DataSource& source, const CheckpointIndex& index,
               const CheckpointIndex::Tensor& saved, const RestoreOptions& options,
               PhaseTrace* trace = nullptr)
      : source_(source), index_(index), saved_(saved), options_(options),
        esize_(DTypeSize(saved.dtype)), trace_(trace) {}

  // Fills `target` (row-major over `target_box`, global coordinates; an
  // array of std::string for strings) from the chunks.
  absl::Status Fill(const Box& target_box, void* target);

 private:
  absl::Status Mismatch(const Box& chunk, int64_t tile) const;
  absl::Status FillPiece(const ReshardPiece& p, const Box& target_box, void* target);
  absl::Status FillInPlace(int c, const std::optional<StorageBlock>& block,
                           const TileGrid& grid, const ReshardPiece& p,
                           const Box& target_box, void* target);
  absl::Status FillStrings(const ReshardPiece& p, const Box& target_box, void* target);
  // Reads `box` (chunk coordinates) of chunk `c` into `dst_box` of a
  // row-major buffer of `dst_shape`.
  absl::Status ReadChunkBox(int c, const std::optional<StorageBlock>& block,
                            const Box& box, absl::Span<const int64_t> dst_shape,
                            const Box& dst_box, void* dst);

  DataSource& source_;
  const CheckpointIndex& index_;
  const CheckpointIndex::Tensor& saved_;
  const RestoreOptions& options_;
  int64_t esize_;
  PhaseTrace* trace_;
  std::vector<char> buffer_, hdf5_buffer_;
  std::vector<uint64_t> sums_;
};

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_TENSOR_READER_H_
