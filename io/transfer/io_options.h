// IoOptions: how a save or restore moves its bytes, as opposed to what the
// checkpoint holds. The one settings value of every entry point: SaveTensors
// and RestoreTensors (checkpoint/engine/shard_io.h), DTensorCheckpoint, the
// Saver and CheckpointManager.
//
//   IoOptions io;
//   io.transfer_mode = TransferMode::kCollective;
//   io.mpi_hints["romio_cb_write"] = "enable";
//   io.progress = [](int64_t done, int64_t total) { ... };
#ifndef MESHCKPT_IO_TRANSFER_IO_OPTIONS_H_
#define MESHCKPT_IO_TRANSFER_IO_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace meshckpt {

// How ranks move tensor data to and from the data file.
//   kDirect: HDF5 (on rank 0 when saving) creates the file and its datasets
//     and says where their storage is; each rank then moves its chunks with
//     POSIX pwrite/pread at those offsets. Fastest on local and POSIX
//     parallel filesystems; the default.
//   kIndependent: HDF5 on rank 0 creates the file and its datasets, as for
//     kDirect (so a full disk is met serially, never inside a collective
//     call); every data transfer then goes through parallel HDF5 and MPI-IO,
//     independent per rank; honours mpi_hints, except those MPI-IO applies
//     only when it creates a file (e.g. Lustre striping).
//   kCollective: as kIndependent, with collective writes (MPI-IO collective
//     buffering); restores read independently.
// String tensors are written by rank 0 when it creates the file, in every
// mode (io/transfer/chunk_sink.h). A restore opens the data file once per
// rank (CheckpointHandle): in the MPI-IO modes through MPI-IO over
// MPI_COMM_SELF, so that the open file can outlive a collective call and be
// closed on any rank at any time.
enum class TransferMode { kDirect, kIndependent, kCollective };

struct IoOptions {
  TransferMode transfer_mode = TransferMode::kDirect;
  // MPI-IO hints (MPI_Info key/value), e.g. {"cb_buffer_size", "16777216"};
  // used by the MPI-IO transfer modes.
  std::map<std::string, std::string> mpi_hints;
  // Saves: target bytes per checksum tile; tiles are what a restore must
  // read around the region it wants, so smaller tiles mean less extra
  // reading.
  int64_t checksum_tile_bytes = int64_t{1} << 20;
  // Restores: verify the XXH3 checksums of everything read (on by default).
  bool verify_checksums = true;
  // Called on every rank with (bytes this rank moved so far, its total); for
  // an async save, on its background thread.
  std::function<void(int64_t, int64_t)> progress;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_IO_OPTIONS_H_
