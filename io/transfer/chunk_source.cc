// ChunkSource: a data file read directly with pread, or through HDF5 over MPI-IO.
#include "meshckpt/io/transfer/chunk_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {
namespace {

absl::Status Closed(const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("data file '", path, "' was closed before this read"));
}

// Reads `box` of dataset `d` through HDF5 into `dst_box` of `dst`, staging
// in `staging` unless the region is the whole buffer.
absl::Status ReadThroughHdf5(DataFileReader& r, int d, int64_t element_size,
                             const Box& box, absl::Span<const int64_t> dst_shape,
                             const Box& dst_box, void* dst, std::vector<char>* staging) {
  if (dst_box == Box::FromShape({dst_shape.begin(), dst_shape.end()})) {
    return r.Read(d, box, dst);
  }
  staging->resize(box.num_elements() * element_size);
  MESHCKPT_RETURN_IF_ERROR(r.Read(d, box, staging->data()));
  CopyRegion(staging->data(), box.shape(), Box::FromShape(box.shape()), dst, dst_shape,
             dst_box, element_size);
  return absl::OkStatus();
}

absl::StatusOr<int> OpenDataset(DataFileReader& r, const DatasetRef& dataset) {
  return r.OpenDataset(dataset.path, dataset.dtype, dataset.shape);
}

// pread at the offsets the index records (or HDF5 locates); HDF5 for the
// rest, opened on first need on the same open file.
class DirectSource final : public ChunkSource {
 public:
  DirectSource(std::string path, std::unique_ptr<DirectFile> file)
      : ChunkSource(std::move(path)), file_(std::move(file)) {}
  ~DirectSource() override { (void)Close(); }

  absl::Status ReadChunk(const DatasetRef& dataset, const Box& chunk,
                         const std::optional<StorageBlock>& stored, const Box& box,
                         absl::Span<const int64_t> dst_shape, const Box& dst_box,
                         void* dst) override {
    if (file_ == nullptr) return Closed(path());
    const int64_t esize = DTypeSize(dataset.dtype);
    MESHCKPT_ASSIGN_OR_RETURN(std::optional<StorageBlock> block,
                              Where(dataset, chunk, stored));
    if (block.has_value())
      return file_->Read(*block, box, esize, dst_shape, dst_box, dst);
    MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, Hdf5());
    MESHCKPT_ASSIGN_OR_RETURN(int d, OpenDataset(*r, dataset));
    return ReadThroughHdf5(*r, d, esize, box, dst_shape, dst_box, dst, &staging_);
  }

  absl::Status ReadStrings(const DatasetRef& dataset, const Box& box,
                           std::string* out) override {
    if (file_ == nullptr) return Closed(path());
    MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, Hdf5());
    MESHCKPT_ASSIGN_OR_RETURN(int d, OpenDataset(*r, dataset));
    return r->ReadStrings(d, box, out);
  }

  absl::Status CheckDataset(const DatasetRef& dataset) override {
    if (file_ == nullptr) return Closed(path());
    MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, Hdf5());
    return OpenDataset(*r, dataset).status();
  }

  absl::Status Close() override {
    absl::Status s;
    if (hdf5_ != nullptr) s = hdf5_->Close();
    hdf5_.reset();
    if (file_ != nullptr) {
      absl::Status f = file_->Close();
      if (s.ok()) s = f;
    }
    file_.reset();
    located_.clear();
    return s;
  }

 private:
  absl::StatusOr<DataFileReader*> Hdf5() {
    if (hdf5_ == nullptr) {
      MESHCKPT_ASSIGN_OR_RETURN(hdf5_,
                                DataFileReader::OpenDescriptor(file_->fd(), path()));
    }
    return hdf5_.get();
  }

  // Where `chunk` lies when it can be read directly: as the index records,
  // else as HDF5 says (asked once per dataset); nullopt: read through HDF5.
  absl::StatusOr<std::optional<StorageBlock>> Where(
      const DatasetRef& dataset, const Box& chunk,
      const std::optional<StorageBlock>& stored) {
    if (stored.has_value()) return stored;
    if (dataset.dtype == DType::kString) return std::nullopt;
    auto it = located_.find(dataset.path);
    if (it == located_.end()) {
      MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, Hdf5());
      MESHCKPT_ASSIGN_OR_RETURN(int d, OpenDataset(*r, dataset));
      MESHCKPT_ASSIGN_OR_RETURN(std::vector<StorageBlock> blocks, r->Locate(d));
      it = located_.emplace(dataset.path, std::move(blocks)).first;
    }
    return BlockHolding(it->second, chunk, DTypeSize(dataset.dtype));
  }

  std::unique_ptr<DirectFile> file_;
  std::unique_ptr<DataFileReader> hdf5_;
  std::map<std::string, std::vector<StorageBlock>> located_;  // By dataset path.
  std::vector<char> staging_;
};

// Everything through one HDF5 reader (MPI-IO, or POSIX without MPI).
class MpiIoSource final : public ChunkSource {
 public:
  MpiIoSource(std::string path, std::unique_ptr<DataFileReader> hdf5)
      : ChunkSource(std::move(path)), hdf5_(std::move(hdf5)) {}
  ~MpiIoSource() override { (void)Close(); }

  absl::Status ReadChunk(const DatasetRef& dataset, const Box& /*chunk*/,
                         const std::optional<StorageBlock>& /*stored*/, const Box& box,
                         absl::Span<const int64_t> dst_shape, const Box& dst_box,
                         void* dst) override {
    if (hdf5_ == nullptr) return Closed(path());
    MESHCKPT_ASSIGN_OR_RETURN(int d, OpenDataset(*hdf5_, dataset));
    return ReadThroughHdf5(*hdf5_, d, DTypeSize(dataset.dtype), box, dst_shape, dst_box,
                           dst, &staging_);
  }

  absl::Status ReadStrings(const DatasetRef& dataset, const Box& box,
                           std::string* out) override {
    if (hdf5_ == nullptr) return Closed(path());
    MESHCKPT_ASSIGN_OR_RETURN(int d, OpenDataset(*hdf5_, dataset));
    return hdf5_->ReadStrings(d, box, out);
  }

  absl::Status CheckDataset(const DatasetRef& dataset) override {
    if (hdf5_ == nullptr) return Closed(path());
    return OpenDataset(*hdf5_, dataset).status();
  }

  absl::Status Close() override {
    if (hdf5_ == nullptr) return absl::OkStatus();
    absl::Status s = hdf5_->Close();
    hdf5_.reset();
    return s;
  }

 private:
  std::unique_ptr<DataFileReader> hdf5_;
  std::vector<char> staging_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChunkSource>> ChunkSource::Open(
    Communicator& comm, const std::string& path, const ChunkSourceOptions& options) {
  auto check_size = [&](int64_t size) {
    if (options.expected_size < 0 || size == options.expected_size)
      return absl::OkStatus();
    return absl::DataLossError(absl::StrCat(
        "data file '", path, "' has ", size, " bytes but was committed with ",
        options.expected_size, " (truncated or replaced)"));
  };
  if (options.mode == ChunkSourceOptions::Mode::kDirect) {
    MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DirectFile> file,
                              DirectFile::Open(path, DirectFile::kRead));
    struct stat st;
    if (::fstat(file->fd(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
    MESHCKPT_RETURN_IF_ERROR(check_size(static_cast<int64_t>(st.st_size)));
    return std::unique_ptr<ChunkSource>(new DirectSource(path, std::move(file)));
  }
  // Checked before HDF5 opens it, which refuses a truncated file with a less
  // telling message; and again on the file HDF5 opened.
  MESHCKPT_ASSIGN_OR_RETURN(OpenedFile plain, OpenRegularFileForRead(path));
  ::close(plain.fd);
  MESHCKPT_RETURN_IF_ERROR(check_size(plain.size));
  DataFileOptions o;
  o.mpi_hints = options.mpi_hints;
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DataFileReader> reader,
                            DataFileReader::OpenIndependent(comm, path, o));
  MESHCKPT_ASSIGN_OR_RETURN(int64_t size, reader->FileSize());
  MESHCKPT_RETURN_IF_ERROR(check_size(size));
  return std::unique_ptr<ChunkSource>(new MpiIoSource(path, std::move(reader)));
}

}  // namespace meshckpt
