// Hdf5FileWriter: the HDF5 writer behind DataFileWriter, with the calls only
// io/transfer's chunk sinks make (opening a file a serial writer created,
// padding collective writes, reserving space, locating storage). Internal
// to io/.
//
// A writer made with a Communicator that has MPI behind it opens the file
// through MPI-IO on all its ranks; CreateDataset, OpenDataset and Close are
// then collective (same calls, same arguments, same order on every rank),
// while Write is independent unless DataFileOptions::collective is set, in
// which case every rank calls Write or WriteNothing the same number of times
// per dataset.
#ifndef MESHCKPT_IO_TRANSFER_HDF5_WRITER_H_
#define MESHCKPT_IO_TRANSFER_HDF5_WRITER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/direct_file.h"

namespace meshckpt {

class Hdf5FileWriter : public DataFileWriter {
 public:
  // As DataFileWriter::Create.
  static absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> Create(
      Communicator& comm, const std::string& path, const DataFileOptions& options);
  // Opens an existing file to write into the datasets it has (OpenDataset);
  // collective when comm has MPI behind it. When the file was made by a
  // serial writer that reserved its space (ReserveSpace) and closed it,
  // nothing written through this writer needs a new block of disk.
  static absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> OpenForWrite(
      Communicator& comm, const std::string& path, const DataFileOptions& options);

  // A dataset the file already has, created with `spec`.
  virtual absl::StatusOr<int> OpenDataset(const DatasetSpec& spec) = 0;
  // Collective mode: this rank's turn in a collective write with no data.
  virtual absl::Status WriteNothing(int dataset) = 0;
  // Reserves disk space for all the file holds so far (a dataset's data is
  // allocated when it is created). A full disk then fails here, before the
  // collective writes and close: HDF5 cannot get out of those when a write
  // fails on only some ranks, and hangs. Not collective: one rank calls it.
  virtual absl::Status ReserveSpace() = 0;
  // Where the dataset's elements are in the file, for DirectFile (see
  // LocateStorage in io/transfer/hdf5_common.h): empty when they cannot be
  // moved directly. Serial writers only (FailedPrecondition otherwise);
  // with early allocation this is known right after CreateDataset.
  virtual absl::StatusOr<std::vector<StorageBlock>> Locate(int dataset) = 0;
  // Closes the dataset's handle early (e.g. after Locate, when its data is
  // written some other way); the dataset may not be used afterwards.
  virtual absl::Status ReleaseDataset(int dataset) = 0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_HDF5_WRITER_H_
