// What the two ChunkSinks (direct_sink.cc, mpiio_sink.cc) share: the
// records of this rank's chunks and the checks on Write calls. Internal to
// io/transfer.
#ifndef MESHCKPT_IO_TRANSFER_CHUNK_SINK_INTERNAL_H_
#define MESHCKPT_IO_TRANSFER_CHUNK_SINK_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/chunk_sink.h"
#include "meshckpt/io/transfer/direct_file.h"
#include "meshckpt/io/transfer/io_options.h"

namespace meshckpt::sink_internal {

// Per dataset, where HDF5 allocated its storage (io/transfer/direct_file.h).
using StorageTable = std::vector<std::vector<StorageBlock>>;

class SinkBase : public ChunkSink {
 protected:
  // Records every chunk `rank` writes: string chunks complete (their one
  // checksum over HashStrings), numeric ones with their tile shape and
  // zeroed checksums.
  SinkBase(int rank, std::vector<SinkDataset> datasets, int64_t tile_bytes);

  // The record of chunks[chunk] of datasets[dataset] when that is a numeric
  // chunk of this rank not yet written and no earlier Write went to a later
  // dataset; FailedPrecondition otherwise.
  absl::StatusOr<ChunkRecord*> Begin(size_t dataset, size_t chunk);
  // What Close returns: `status` when not OK, else every record.
  absl::StatusOr<std::vector<WrittenChunk>> Finish(const absl::Status& status);

  const std::vector<SinkDataset>& datasets() const { return datasets_; }
  int rank() const { return rank_; }
  // This rank's records, in dataset and chunk order; chunk_of(i) is the
  // chunk record i is of.
  std::vector<WrittenChunk>& records() { return records_; }
  size_t chunk_of(size_t record) const { return chunks_[record]; }

 private:
  int rank_;
  std::vector<SinkDataset> datasets_;
  std::vector<WrittenChunk> records_;
  std::vector<size_t> chunks_;  // Parallel to records_.
  std::vector<size_t> first_;   // Per dataset, its first record; one more at the end.
  std::vector<bool> written_;   // Parallel to records_.
  size_t last_dataset_ = 0;
};

// Collective: creates `path` with every dataset on rank 0 (string datasets
// written from every rank's blobs), reserves its space and closes it. The
// storage table on every rank when `locate`, else an empty one. Same status
// on every rank.
absl::StatusOr<StorageTable> CreateDataFile(Communicator& comm, const std::string& path,
                                            const std::vector<SinkDataset>& datasets,
                                            bool locate);

std::unique_ptr<ChunkSink> NewDirectSink(int rank, const std::string& path,
                                         std::vector<SinkDataset> datasets,
                                         StorageTable storage, const IoOptions& options);

// Collective: opens the file CreateDataFile made through parallel HDF5.
absl::StatusOr<std::unique_ptr<ChunkSink>> OpenMpiIoSink(
    Communicator& comm, const std::string& path, std::vector<SinkDataset> datasets,
    const IoOptions& options);

}  // namespace meshckpt::sink_internal

#endif  // MESHCKPT_IO_TRANSFER_CHUNK_SINK_INTERNAL_H_
