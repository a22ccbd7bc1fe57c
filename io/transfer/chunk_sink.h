// io/transfer/ owns moving chunk bytes between memory and the data file:
// ChunkSink (save) and ChunkSource (restore), each direct (pwrite/pread at
// the offsets HDF5 allocated) or through parallel HDF5 and MPI-IO, and the
// HDF5 file underneath. It is the only code that includes <hdf5.h>, and it
// sees MPI only through HDF5's parallel headers (hdf5_*.cc). It may use
// io/format/, io/fs/, comm/, layout/ and base/; nothing in checkpoint/.
//
// ChunkSink: how a save's chunks get into its data file. The engine says
// what to write (every dataset, and which rank writes which chunk of it);
// the sink creates the file, moves the bytes, computes the tile checksums
// and says where each chunk ended up. Made once per save by Create, from
// IoOptions::transfer_mode:
//
//   kDirect: rank 0 creates the file and its datasets with HDF5 and
//     broadcasts where HDF5 allocated their storage; every rank then
//     pwrites its chunks there, a tile row at a time, hashing each tile row
//     just before writing it so the data is read from memory once. Chunk
//     records carry their file offset and storage shape.
//   kIndependent, kCollective: rank 0 creates the file and its datasets as
//     for kDirect; every rank then opens it through parallel HDF5 and writes
//     with H5Dwrite (collective mode: every rank makes the same number of
//     calls per dataset, padding with empty ones), while a second thread
//     computes the checksums. Chunk records carry no file location.
//
// In both, rank 0 creates everything serially and reserves the file's space
// before any rank writes tensor data, so a full disk is an error at create
// time (ResourceExhausted naming the file, bytes needed and free), never a
// failure inside a collective HDF5 call, which cannot be left.
//
// String tensors are written at create time: each rank encodes each of its
// string chunks once (io/format/string_blob.h) and sends the blobs to
// rank 0, which writes their pieces where they belong in the tensor's blob.
//
//   auto sink = ChunkSink::Create(comm, partial, datasets, io);  // Collective.
//   for (each numeric chunk c of dataset d that this rank writes)
//     (*sink)->Write(d, c);
//   absl::StatusOr<std::vector<WrittenChunk>> mine = (*sink)->Close();  // Collective.
//
// The data is not durable until the caller syncs the file. Errors name the
// file, and the tensor or dataset where there is one.
#ifndef MESHCKPT_IO_TRANSFER_CHUNK_SINK_H_
#define MESHCKPT_IO_TRANSFER_CHUNK_SINK_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/io_options.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

// One chunk of a dataset, written whole by one rank.
struct SinkChunk {
  int rank = 0;
  Box box;  // Dataset coordinates.
  // On `rank`: the chunk's elements, row-major over `box` (std::string for
  // strings); must stay valid until Close. Null on other ranks.
  const void* data = nullptr;
};

struct SinkDataset {
  DatasetSpec spec;  // Strings: stored as a blob (io/format/string_blob.h).
  // Every chunk, in the same order on every rank; together they cover the
  // dataset once.
  std::vector<SinkChunk> chunks;
};

// What this rank wrote of chunks[chunk] of datasets[dataset].
struct WrittenChunk {
  size_t dataset = 0;
  ChunkRecord record;
};

class ChunkSink {
 public:
  virtual ~ChunkSink() = default;

  // Collective: every rank passes the same datasets (its own data pointers
  // aside) and the same options. Creates `path` (truncating it) with every
  // dataset, string datasets already written. Same status on every rank.
  static absl::StatusOr<std::unique_ptr<ChunkSink>> Create(
      Communicator& comm, const std::string& path, std::vector<SinkDataset> datasets,
      const IoOptions& options);

  // Writes chunks[chunk] of datasets[dataset], a numeric chunk of this
  // rank, with its tile checksums (IoOptions::checksum_tile_bytes). Calls
  // go in ascending dataset order. Not collective; after a failure, later
  // calls write nothing and return the same error.
  virtual absl::Status Write(size_t dataset, size_t chunk) = 0;

  // Collective, also after a failed Write. Closes the file and returns the
  // records of every chunk this rank writes (strings included), or this
  // rank's first error; FailedPrecondition when a numeric chunk of this rank
  // was never written.
  virtual absl::StatusOr<std::vector<WrittenChunk>> Close() = 0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_CHUNK_SINK_H_
