// ChunkSource: the data file of a checkpoint opened for reading, behind one
// interface whichever way its bytes move.
//
// A restore reads boxes of saved chunks (ReadChunk) and whole string
// datasets (ReadStrings); how is the source's business:
//   kDirect: the file is opened with DirectFile (io/transfer/direct_file.h);
//     a chunk whose storage the index records is read with pread at that
//     offset; for one it does not record, HDF5 says where the dataset's
//     storage is (located once per dataset); anything else (strings,
//     filtered or compact storage) goes through HDF5. HDF5 is opened only
//     when first needed, on the same open file (POSIX driver, this process).
//   kMpiIo: everything goes through HDF5 over MPI-IO, independent reads that
//     honour the MPI hints, with the POSIX driver where there is no MPI.
// Either way a source reads only the file it opened: once open, renaming
// another file over `path` (a newer save of the same prefix) changes
// nothing it reads.
//
// Opening and closing are per process, never collective (an MPI-IO source
// opens the file over MPI_COMM_SELF): a source may live across collective
// calls and be dropped on any rank at any time.
//
//   ChunkSourceOptions o;
//   o.expected_size = committed_size;
//   auto source = ChunkSource::Open(comm, "/ckpt/x.h5", o);
//   (*source)->ReadChunk({"model/w", DType::kFloat32, {8, 4}}, chunk, stored,
//                        box, box.shape(), Box::FromShape(box.shape()), out);
//
// Used by one thread at a time. Errors name the file (and the dataset);
// bytes that cannot be read are DataLoss.
#ifndef MESHCKPT_IO_TRANSFER_CHUNK_SOURCE_H_
#define MESHCKPT_IO_TRANSFER_CHUNK_SOURCE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/direct_file.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

// A dataset of the data file as the index describes it.
struct DatasetRef {
  std::string path;  // HDF5 dataset path.
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // The tensor's global shape.
};

struct ChunkSourceOptions {
  enum class Mode { kDirect, kMpiIo };
  Mode mode = Mode::kDirect;
  // MPI_Info hints for kMpiIo.
  std::map<std::string, std::string> mpi_hints;
  // When not negative, the bytes the file must have (the size committed in
  // the index), checked on the file opened before anything of it is read.
  int64_t expected_size = -1;
};

class ChunkSource {
 public:
  // Opens `path` read-only for this process. NotFound when it does not
  // exist, InvalidArgument when it is not a regular file, DataLoss when it
  // does not have options.expected_size bytes or HDF5 cannot read it.
  static absl::StatusOr<std::unique_ptr<ChunkSource>> Open(
      Communicator& comm, const std::string& path, const ChunkSourceOptions& options);

  virtual ~ChunkSource() = default;
  ChunkSource(const ChunkSource&) = delete;
  ChunkSource& operator=(const ChunkSource&) = delete;

  const std::string& path() const { return path_; }

  // Reads `box` (dataset coordinates) of the chunk `chunk` of a numeric
  // dataset into the region `dst_box` (same shape) of a row-major buffer of
  // shape `dst_shape`. `stored` is where the index says the chunk lies (a
  // block whose first element is the chunk's origin), nullopt when it does
  // not say.
  virtual absl::Status ReadChunk(const DatasetRef& dataset, const Box& chunk,
                                 const std::optional<StorageBlock>& stored,
                                 const Box& box, absl::Span<const int64_t> dst_shape,
                                 const Box& dst_box, void* dst) = 0;
  // Elements `box` (dataset coordinates) of a string dataset into `out`,
  // row-major over the box. The source keeps the decoded elements of the
  // last string dataset read, as a restore reads one tensor's chunks in turn.
  virtual absl::Status ReadStrings(const DatasetRef& dataset, const Box& box,
                                   std::string* out) = 0;
  // OK when the file has the dataset with the type and shape of `dataset`;
  // DataLoss otherwise.
  virtual absl::Status CheckDataset(const DatasetRef& dataset) = 0;
  // Closes the file; reads afterwards fail with FailedPrecondition.
  virtual absl::Status Close() = 0;

 protected:
  explicit ChunkSource(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_CHUNK_SOURCE_H_
