// CheckpointOptions: the one options value accepted by every save and
// restore entry point (DTensorCheckpoint, Saver, CheckpointManager).
//
//   CheckpointOptions o;
//   o.transfer_mode = TransferMode::kCollective;
//   o.mpi_hints["romio_cb_write"] = "enable";
//   o.progress = [](int64_t done, int64_t total) { ... };
#ifndef MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_OPTIONS_H_
#define MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "checkpoint/engine/shard_io.h"

namespace meshckpt {

struct CheckpointOptions {
  // How ranks move tensor data to and from the data file (shard_io.h).
  TransferMode transfer_mode = TransferMode::kDirect;
  // MPI_Info hints for MPI-IO (ROMIO: cb_buffer_size, romio_cb_write, ...).
  std::map<std::string, std::string> mpi_hints;
  // Verify checksums of everything a restore reads.
  bool verify_checksums = true;
  // Called on every rank with (bytes done by this rank, its total).
  std::function<void(int64_t, int64_t)> progress;

  SaveOptions ToSaveOptions() const {
    SaveOptions s;
    s.transfer_mode = transfer_mode;
    s.mpi_hints = mpi_hints;
    s.progress = progress;
    return s;
  }
  RestoreOptions ToRestoreOptions() const {
    RestoreOptions r;
    r.transfer_mode = transfer_mode;
    r.mpi_hints = mpi_hints;
    r.verify_checksums = verify_checksums;
    r.progress = progress;
    return r;
  }
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_OPTIONS_H_
