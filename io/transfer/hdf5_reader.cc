// The HDF5 implementation of DataFileReader.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/io/format/string_blob.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/hdf5_common.h"
#include "meshckpt/io/transfer/hdf5_fd_driver.h"
#include "meshckpt/io/transfer/io_pieces.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {
namespace {

using h5::Closer;
using h5::SelectBox;

std::vector<hsize_t> ToHsize(const std::vector<int64_t>& v) {
  return std::vector<hsize_t>(v.begin(), v.end());
}

class Hdf5Reader final : public DataFileReader {
 public:
  Hdf5Reader(hid_t file, std::string path, bool parallel)
      : file_(file), path_(std::move(path)) {
    dxpl_ = H5Pcreate(H5P_DATASET_XFER);
    if (parallel) H5Pset_dxpl_mpio(dxpl_, H5FD_MPIO_INDEPENDENT);
  }
  ~Hdf5Reader() override { (void)Close(); }

  absl::StatusOr<int> OpenDataset(const std::string& path, DType dtype,
                                  const std::vector<int64_t>& shape) override {
    // Reopening is common (a reader reads many boxes): reuse the handle.
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == path && dtypes_[i] == dtype) return static_cast<int>(i);
    }
    hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
    if (d < 0) {
      return h5::Error(absl::StatusCode::kDataLoss,
                       absl::StrCat("dataset '", path, "' is missing from"), path_);
    }
    Closer dset(d);
    Closer ftype(H5Dget_type(d));
    Closer space(H5Dget_space(d));
    const int ndims = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(std::max(ndims, 0));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    bool ok;
    if (dtype == DType::kString) {  // One uint8 blob (io/format/string_blob.h).
      ok = ndims == 1 && H5Tequal(ftype.get(), H5T_STD_U8LE) > 0;
    } else {
      Closer want(h5::TypeFor(dtype));
      ok = H5Tequal(ftype.get(), want.get()) > 0 && dims == ToHsize(shape);
    }
    if (!ok) {
      return absl::DataLossError(absl::StrCat(
          "dataset '", path, "' in '", path_, "' has shape [", absl::StrJoin(dims, ","),
          "] or a type that does not match the index's ", DTypeName(dtype), " [",
          absl::StrJoin(shape, ","), "]"));
    }
    datasets_.push_back(dset.release());
    dtypes_.push_back(dtype);
    shapes_.push_back(shape);
    blob_sizes_.push_back(dims.empty() ? 0 : static_cast<int64_t>(dims[0]));
    names_.push_back(path);
    return static_cast<int>(datasets_.size() - 1);
  }

  absl::Status Read(int dataset, const Box& box, void* data) override {
    const hid_t d = datasets_[dataset];
    Closer type(h5::TypeFor(dtypes_[dataset]));
    char* base = static_cast<char*>(data);
    return ForEachIoPiece(
        box, DTypeSize(dtypes_[dataset]), [&](const Box& piece, int64_t off) {
          Closer fs, ms;
          absl::Status s = SelectBox(d, piece, &fs, &ms);
          if (s.ok() &&
              H5Dread(d, type.get(), ms.get(), fs.get(), dxpl_, base + off) < 0) {
            s = ReadError(dataset, piece);
          }
          return s;
        });
  }

  absl::StatusOr<std::vector<StorageBlock>> Locate(int dataset) override {
    if (dtypes_[dataset] == DType::kString) return std::vector<StorageBlock>();
    return h5::LocateStorage(datasets_[dataset], DTypeSize(dtypes_[dataset]));
  }

  absl::Status ReadStrings(int dataset, const Box& box, std::string* out) override {
    // One dataset at a time: a restore reads a tensor's chunks in turn, and
    // a reader kept open (e.g. for deferred values) should not hold every
    // string tensor it ever read.
    if (strings_dataset_ != dataset) {
      strings_dataset_ = -1;
      strings_.clear();
      absl::Status s = ReadStringBlob(dataset, &strings_);
      if (!s.ok()) {
        strings_.clear();
        return s;
      }
      strings_dataset_ = dataset;
    }
    const std::vector<std::string>& all = strings_;
    if (box.rank() == 0) {
      out[0] = all.at(0);
    } else {
      CopyRegionOf(all.data(), shapes_[dataset], box, out, box.shape(),
                   Box::FromShape(box.shape()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> FileSize() override {
    hsize_t size = 0;
    if (H5Fget_filesize(file_, &size) < 0) {
      return h5::Error(absl::StatusCode::kInternal, "cannot get the size of", path_);
    }
    return static_cast<int64_t>(size);
  }

  absl::Status Close() override {
    if (file_ < 0) return absl::OkStatus();
    for (hid_t d : datasets_) H5Dclose(d);
    datasets_.clear();
    H5Pclose(dxpl_);
    const herr_t rc = H5Fclose(file_);
    file_ = -1;
    if (rc < 0) return h5::Error(absl::StatusCode::kInternal, "cannot close", path_);
    return absl::OkStatus();
  }

 private:
  // Reads and splits a whole string dataset; the reader keeps the elements,
  // as a restore reads string tensors box by box.
  absl::Status ReadStringBlob(int dataset, std::vector<std::string>* all) {
    const hid_t d = datasets_[dataset];
    std::string blob(blob_sizes_[dataset], '\0');
    if (!blob.empty()) {
      absl::Status s = ForEachIoPiece(
          Box::FromShape({blob_sizes_[dataset]}), 1, [&](const Box& piece, int64_t off) {
            Closer fs, ms;
            absl::Status s = SelectBox(d, piece, &fs, &ms);
            if (s.ok() && H5Dread(d, H5T_NATIVE_UINT8, ms.get(), fs.get(), dxpl_,
                                  blob.data() + off) < 0) {
              s = ReadError(dataset, piece);
            }
            return s;
          });
      if (!s.ok()) return s;
    }
    absl::Status s =
        DecodeStringBlob(blob, Box::FromShape(shapes_[dataset]).num_elements(), all);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat("string dataset '", names_[dataset],
                                              "' in '", path_,
                                              "' is damaged: ", s.message()));
    }
    return absl::OkStatus();
  }

  absl::Status ReadError(int dataset, const Box& box) {
    return h5::Error(absl::StatusCode::kDataLoss,
                     absl::StrCat("cannot read ", box.ToString(), " of dataset '",
                                  names_[dataset], "' from"),
                     path_);
  }

  hid_t file_;
  std::string path_;
  hid_t dxpl_;
  std::vector<hid_t> datasets_;
  std::vector<DType> dtypes_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<int64_t> blob_sizes_;  // Bytes of a string dataset.
  std::vector<std::string> names_;
  int strings_dataset_ = -1;  // The string dataset whose elements are in strings_.
  std::vector<std::string> strings_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataFileReader>> DataFileReader::Open(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  h5::SilenceErrorPrinting();
  // HDF5's open would block on a FIFO; refuse anything but a regular file.
  absl::StatusOr<OpenedFile> checked = OpenRegularFileForRead(path);
  if (!checked.ok()) {
    if (absl::IsNotFound(checked.status())) {
      return absl::NotFoundError(absl::StrCat("data file '", path, "' does not exist"));
    }
    return checked.status();
  }
  ::close(checked->fd);
  Closer fapl;
  absl::Status s = h5::FileAccess(comm, options, /*writing=*/false, nullptr, &fapl);
  if (!s.ok()) return s;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (file < 0) {
    return h5::Error(absl::StatusCode::kDataLoss, "cannot open HDF5 file", path);
  }
  return std::unique_ptr<DataFileReader>(
      new Hdf5Reader(file, path, comm.mpi_fortran_handle().has_value()));
}

absl::StatusOr<std::unique_ptr<DataFileReader>> DataFileReader::OpenIndependent(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  if (!comm.mpi_fortran_handle().has_value()) return Open(comm, path, options);
  absl::StatusOr<std::unique_ptr<Communicator>> self =
      MpiCommunicator::FromFortranHandle(MPI_Comm_c2f(MPI_COMM_SELF));
  if (!self.ok()) return self.status();
  return Open(**self, path, options);  // HDF5 keeps its own duplicate.
}

absl::StatusOr<std::unique_ptr<DataFileReader>> DataFileReader::OpenDescriptor(
    int fd, const std::string& path) {
  h5::SilenceErrorPrinting();
  std::unique_ptr<Communicator> serial = SerialCommunicator();
  Closer fapl;
  absl::Status s =
      h5::FileAccess(*serial, DataFileOptions(), /*writing=*/false, nullptr, &fapl);
  if (s.ok()) s = h5::UseDescriptorDriver(fapl.get(), fd);
  if (!s.ok()) return s;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (file < 0) {
    return h5::Error(absl::StatusCode::kDataLoss, "cannot open HDF5 file", path);
  }
  return std::unique_ptr<DataFileReader>(new Hdf5Reader(file, path, /*parallel=*/false));
}

}  // namespace meshckpt
