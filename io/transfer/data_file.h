// DataFileWriter / DataFileReader: the HDF5 data file of a checkpoint behind
// a small interface. Only io/*.cc include <hdf5.h>.
//
// A writer made with a Communicator that has MPI behind it opens the file
// through MPI-IO on all its ranks; CreateDataset and Close are then
// collective (same calls, same arguments, same order on every rank), while
// Write is independent. Checkpoints are written through
// io/transfer/chunk_sink.h, which also stores string tensors (as byte blobs,
// io/format/string_blob.h); this writer takes numeric datasets only.
//
// Datasets hold the tensor's global shape; `chunk_shape` chooses HDF5's
// chunked layout (empty: contiguous). Fill values are never written and
// space is allocated at creation. Errors name the file and dataset; a full
// disk is ResourceExhausted saying the bytes needed and free
// (io/fs/disk_space.h), wherever it is met, and a writer that failed still
// closes its file completely (see io/transfer/hdf5_posix_driver.h).
//
//   auto w = DataFileWriter::Create(comm, "/ckpt/x.h5.partial-1", {});
//   int d = *(*w)->CreateDataset({"model/w", DType::kFloat32, {8, 4}, {}, {}});
//   (*w)->Write(d, my_box, my_data);
//   (*w)->Close();
#ifndef MESHCKPT_IO_TRANSFER_DATA_FILE_H_
#define MESHCKPT_IO_TRANSFER_DATA_FILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/direct_file.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

struct DatasetSpec {
  std::string path;  // '/'-separated; missing groups are created.
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<int64_t> chunk_shape;  // Empty: contiguous.
  std::vector<std::pair<std::string, std::string>> attributes;
};

struct DataFileOptions {
  bool collective = false;  // Collective data transfers (MPI-IO only).
  std::map<std::string, std::string> mpi_hints;
  // Align objects of at least this many bytes to this boundary (0: off).
  int64_t alignment = int64_t{1} << 20;
};

class DataFileWriter {
 public:
  virtual ~DataFileWriter() = default;

  // Creates (truncates) `path`; collective when comm has MPI behind it.
  static absl::StatusOr<std::unique_ptr<DataFileWriter>> Create(
      Communicator& comm, const std::string& path, const DataFileOptions& options);

  // InvalidArgument for DType::kString.
  virtual absl::StatusOr<int> CreateDataset(const DatasetSpec& spec) = 0;
  // Writes `box` of the dataset from `data`, row-major over the box.
  virtual absl::Status Write(int dataset, const Box& box, const void* data) = 0;
  // Closes datasets and the file (collective for MPI-IO).
  virtual absl::Status Close() = 0;
};

// Objects of open HDF5 files this process holds (H5Fget_obj_count over
// all files), by kind: all 0 between saves and restores. Dataspaces,
// property lists and transient types have no public count. For tests.
struct Hdf5OpenObjects {
  int64_t files = 0, datasets = 0, groups = 0, datatypes = 0, attributes = 0;
  int64_t total() const { return files + datasets + groups + datatypes + attributes; }
  std::string ToString() const;
};
Hdf5OpenObjects CountOpenHdf5Objects();

class DataFileReader {
 public:
  virtual ~DataFileReader() = default;

  // Opens `path` read-only: through MPI-IO (collective) when comm has MPI
  // behind it, else with the POSIX driver. NotFound when missing, DataLoss
  // when HDF5 cannot read it.
  static absl::StatusOr<std::unique_ptr<DataFileReader>> Open(
      Communicator& comm, const std::string& path, const DataFileOptions& options);
  // As Open, for this process alone: through MPI-IO over MPI_COMM_SELF when
  // comm has MPI behind it, else with the POSIX driver. Neither this nor
  // Close is collective, so the reader may outlive any collective call.
  static absl::StatusOr<std::unique_ptr<DataFileReader>> OpenIndependent(
      Communicator& comm, const std::string& path, const DataFileOptions& options);
  // Opens, for this process, the file `fd` is open on, whatever `path` (for
  // messages) names by now (io/transfer/hdf5_fd_driver.h). `fd` stays the
  // caller's.
  static absl::StatusOr<std::unique_ptr<DataFileReader>> OpenDescriptor(
      int fd, const std::string& path);

  // Checks the stored type and shape against what the index says: DataLoss
  // when they differ.
  virtual absl::StatusOr<int> OpenDataset(const std::string& path, DType dtype,
                                          const std::vector<int64_t>& shape) = 0;
  virtual absl::Status Read(int dataset, const Box& box, void* data) = 0;
  // Where the dataset's elements are in the file, for DirectFile (see
  // LocateStorage in io/transfer/hdf5_common.h): empty when they cannot be
  // moved directly.
  virtual absl::StatusOr<std::vector<StorageBlock>> Locate(int dataset) = 0;
  // Keeps the decoded elements of the last string dataset read.
  virtual absl::Status ReadStrings(int dataset, const Box& box, std::string* out) = 0;
  // Bytes in the file that was opened.
  virtual absl::StatusOr<int64_t> FileSize() = 0;
  virtual absl::Status Close() = 0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_DATA_FILE_H_
