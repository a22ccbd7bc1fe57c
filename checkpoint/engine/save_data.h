// The data half of a save: creating the datasets and writing every rank's
// shards with their checksums, by one of two paths.
//
// Direct (TransferMode::kDirect): rank 0 alone creates the HDF5 file and its
// datasets (POSIX driver, storage allocated at creation, fill never), asks
// HDF5 where each dataset's storage is, closes the file and broadcasts the
// storage table. Every rank then writes its shards with pwrite at those
// offsets, one tile row at a time, hashing each tile row just before
// writing it so the data is read from memory once.
//
// MPI-IO (kIndependent, kCollective): rank 0 creates the file and its
// datasets as in the direct path (serially, space reserved), then all ranks
// open it through parallel HDF5 and write with H5Dwrite; checksums are
// computed by a second thread meanwhile.
//
// Both return this rank's report (chunks, checksums, strings) and leave the
// data not yet durable. Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "checkpoint/engine/save_commit.h"
#include "checkpoint/engine/save_plan.h"
#include "comm/communicator.h"
#include "io/transfer/data_file.h"

namespace meshckpt::internal {

// Collective. Creates `partial` and its numeric datasets on rank 0; every
// rank gets the same status and, when OK, the storage table.
absl::StatusOr<StorageTable> CreateDataFileDirect(Communicator& comm,
                                                  const std::string& partial,
                                                  const std::vector<PlannedTensor>& plan);

// Writes this rank's shards into `partial` at the offsets in `storage`,
// hashing as it goes, and fills `report` (strings only go there). Not
// collective; the data is not yet durable.
absl::Status WriteShardsDirect(const Communicator& comm, const std::string& partial,
                               const std::vector<PlannedTensor>& plan,
                               const StorageTable& storage, const IoOptions& options,
                               RankReport* report);

// Collective: creates `partial` and its numeric datasets on rank 0 and
// opens them on every rank through MPI-IO. Same status on every rank.
absl::StatusOr<std::unique_ptr<DataFileWriter>> CreateDataFileMpiIo(
    Communicator& comm, const std::string& partial,
    const std::vector<PlannedTensor>& plan, const IoOptions& options,
    std::vector<int>* datasets);

// Collective: writes this rank's shards with H5Dwrite (hashing on a second
// thread into `report`) and closes the file. This rank's status.
absl::Status WriteShardsMpiIo(const Communicator& comm, DataFileWriter& writer,
                              const std::vector<int>& datasets,
                              const std::vector<PlannedTensor>& plan,
                              const IoOptions& options, RankReport* report);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SAVE_DATA_H_
