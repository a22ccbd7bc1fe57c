// The HDF5 implementation of DataFileWriter and Hdf5FileWriter.
//
// Serial writers use the recording driver (io/transfer/hdf5_posix_driver.h): HDF5
// never sees one of their writes fail, so closing their file always
// succeeds and leaves nothing open; the first failed write is this file's
// error, wherever HDF5 would have reported it. MPI-IO writers use HDF5's
// mpio driver, where an out-of-space error is recognised by its text or by
// statvfs.
#include "meshckpt/io/transfer/hdf5_writer.h"

#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/io/fs/disk_space.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/hdf5_common.h"
#include "meshckpt/io/transfer/hdf5_posix_driver.h"
#include "meshckpt/io/transfer/io_pieces.h"

namespace meshckpt {
namespace {

using h5::Closer;
using h5::SelectBox;

std::vector<hsize_t> ToHsize(const std::vector<int64_t>& v) {
  return std::vector<hsize_t>(v.begin(), v.end());
}

// HDF5's and MPI-IO's words for a full disk or quota.
bool MentionsNoSpace(absl::string_view text) {
  for (absl::string_view s : {"No space left", "errno = 28", "MPI_ERR_NO_SPACE",
                              "Disk quota exceeded", "MPI_ERR_QUOTA", "errno = 122"}) {
    if (absl::StrContains(text, s)) return true;
  }
  return false;
}

class Hdf5Writer final : public Hdf5FileWriter {
 public:
  // `failure`: what the recording driver found (serial writers), else null.
  Hdf5Writer(hid_t file, std::string path, bool parallel, bool collective,
             std::unique_ptr<h5::IoFailure> failure)
      : failure_(std::move(failure)),
        file_(file),
        path_(std::move(path)),
        parallel_(parallel) {
    dxpl_.reset(H5Pcreate(H5P_DATASET_XFER));
    if (parallel_) {
      H5Pset_dxpl_mpio(dxpl_.get(),
                       collective ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    }
  }
  ~Hdf5Writer() override { (void)Close(); }

  absl::StatusOr<int> CreateDataset(const DatasetSpec& spec) override {
    if (spec.dtype == DType::kString) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset '", spec.path, "' of '", path_,
          "': string tensors are stored as byte blobs (io/transfer/chunk_sink.h)"));
    }
    Closer type(h5::TypeFor(spec.dtype));
    absl::StatusOr<hid_t> d = Create(spec, type.get(), spec.shape, spec.chunk_shape);
    if (!d.ok()) return d.status();
    datasets_.push_back(*d);
    specs_.push_back(spec);
    return static_cast<int>(datasets_.size() - 1);
  }

  absl::StatusOr<int> OpenDataset(const DatasetSpec& spec) override {
    const hid_t d = H5Dopen2(file_, spec.path.c_str(), H5P_DEFAULT);
    if (d < 0) {
      return Failed(absl::StatusCode::kInternal,
                    absl::StrCat("cannot open dataset '", spec.path, "' of"));
    }
    datasets_.push_back(d);
    specs_.push_back(spec);
    return static_cast<int>(datasets_.size() - 1);
  }

  absl::Status Write(int dataset, const Box& box, const void* data) override {
    const hid_t d = datasets_[dataset];
    Closer type(h5::TypeFor(specs_[dataset].dtype));
    const int64_t esize = DTypeSize(specs_[dataset].dtype);
    const char* base = static_cast<const char*>(data);
    return ForEachIoPiece(box, esize, [&](const Box& piece, int64_t offset) {
      return WritePiece(dataset, d, type.get(), piece, base + offset);
    });
  }

  absl::Status WriteNothing(int dataset) override {
    const hid_t d = datasets_[dataset];
    Closer type(h5::TypeFor(specs_[dataset].dtype));
    Closer fs(H5Dget_space(d));
    H5Sselect_none(fs.get());
    hsize_t one = 1;
    Closer ms(H5Screate_simple(1, &one, nullptr));
    H5Sselect_none(ms.get());
    char dummy[16];
    if (H5Dwrite(d, type.get(), ms.get(), fs.get(), dxpl_.get(), dummy) < 0) {
      return WriteError(dataset, Box());
    }
    return absl::OkStatus();
  }

  absl::Status ReserveSpace() override {
    if (absl::Status s = IoStatus(); !s.ok()) return s;
    hsize_t size = 0;  // The larger of the end of allocation and of the file.
    if (H5Fget_filesize(file_, &size) < 0) {
      return h5::Error(absl::StatusCode::kInternal, "cannot get the size of", path_);
    }
    return ReserveFileSpace(path_, static_cast<int64_t>(size));
  }

  absl::StatusOr<std::vector<StorageBlock>> Locate(int dataset) override {
    if (parallel_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset storage of '", path_, "' is located by serial writers only"));
    }
    absl::StatusOr<std::vector<StorageBlock>> blocks =
        h5::LocateStorage(datasets_[dataset], DTypeSize(specs_[dataset].dtype));
    if (!blocks.ok() && failure_ != nullptr && failure_->failed()) return IoStatus();
    return blocks;
  }

  absl::Status ReleaseDataset(int dataset) override {
    const hid_t d = datasets_[dataset];
    datasets_[dataset] = -1;
    if (d >= 0 && H5Dclose(d) < 0) {
      return Failed(absl::StatusCode::kInternal,
                    absl::StrCat("cannot close dataset '", specs_[dataset].path, "' of"));
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (file_ < 0) return absl::OkStatus();
    bool ok = true;
    for (hid_t d : datasets_) ok &= d < 0 || H5Dclose(d) >= 0;
    datasets_.clear();
    dxpl_.reset(-1);
    hsize_t size = 0;
    if (H5Fget_filesize(file_, &size) >= 0) size_ = static_cast<int64_t>(size);
    // Cannot fail for I/O with the recording driver; the file's ID is gone
    // either way (H5F_CLOSE_STRONG closed anything still open in it).
    ok &= H5Fclose(file_) >= 0;
    file_ = -1;
    if (absl::Status io = IoStatus(); !io.ok()) return io;  // The cause.
    if (!ok) return Failed(absl::StatusCode::kInternal, "cannot close");
    return absl::OkStatus();
  }

 private:
  // A dataset of `type` and `shape` (chunked when `chunk` is not empty) with
  // the spec's attributes.
  absl::StatusOr<hid_t> Create(const DatasetSpec& spec, hid_t type,
                               const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& chunk) {
    std::vector<hsize_t> dims = ToHsize(shape);
    Closer space(shape.empty() ? H5Screate(H5S_SCALAR)
                               : H5Screate_simple(static_cast<int>(dims.size()),
                                                  dims.data(), nullptr));
    Closer lcpl(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Closer dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (!chunk.empty() && !shape.empty()) {
      std::vector<hsize_t> c = ToHsize(chunk);
      H5Pset_chunk(dcpl.get(), static_cast<int>(c.size()), c.data());
    }
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    Closer d(H5Dcreate2(file_, spec.path.c_str(), type, space.get(), lcpl.get(),
                        dcpl.get(), H5P_DEFAULT));
    if (d.get() < 0) {
      return Failed(absl::StatusCode::kInternal,
                    absl::StrCat("cannot create dataset '", spec.path, "' in"));
    }
    for (const auto& [name, value] : spec.attributes) {
      Closer atype(H5Tcopy(H5T_C_S1));
      H5Tset_size(atype.get(), std::max<size_t>(1, value.size()));
      Closer aspace(H5Screate(H5S_SCALAR));
      Closer attr(H5Acreate2(d.get(), name.c_str(), atype.get(), aspace.get(),
                             H5P_DEFAULT, H5P_DEFAULT));
      if (attr.get() < 0 || H5Awrite(attr.get(), atype.get(), value.c_str()) < 0) {
        return Failed(absl::StatusCode::kInternal,
                      absl::StrCat("cannot write attribute '", name, "' of dataset '",
                                   spec.path, "' in"));
      }
    }
    return d.release();
  }

  absl::Status WritePiece(int dataset, hid_t d, hid_t type, const Box& piece,
                          const void* data) {
    Closer fs, ms;
    absl::Status s = SelectBox(d, piece, &fs, &ms);
    if (s.ok() && H5Dwrite(d, type, ms.get(), fs.get(), dxpl_.get(), data) < 0) {
      return WriteError(dataset, piece);
    }
    if (s.ok()) s = IoStatus();
    return s;
  }

  absl::Status WriteError(int dataset, const Box& box) {
    return Failed(absl::StatusCode::kInternal,
                  absl::StrCat("cannot write ", box.ToString(), " of dataset '",
                               specs_[dataset].path, "' to"));
  }

  // The bytes the file is to hold: HDF5's end of allocation, or past it
  // what a failed write needed.
  int64_t Size() {
    hsize_t size = 0;
    if (file_ >= 0 && H5Fget_filesize(file_, &size) >= 0) {
      size_ = std::max(size_, static_cast<int64_t>(size));
    }
    return failure_ != nullptr ? std::max(size_, failure_->end) : size_;
  }

  // OK, or the driver's first failed I/O as a Status naming the file (and
  // for a full disk, the bytes it needs and what is free).
  absl::Status IoStatus() {
    if (failure_ == nullptr || !failure_->failed()) return absl::OkStatus();
    if (IsOutOfSpace(failure_->err)) {
      return NoSpaceStatus(failure_->what, path_, failure_->err,
                           BytesToAllocate(path_, Size()));
    }
    return ErrnoStatus(failure_->what, path_, failure_->err);
  }

  // A failed HDF5 call: the recorded I/O failure when there is one (its
  // cause); ResourceExhausted when HDF5's errors say the disk is full or,
  // for MPI-IO writers (which record nothing), when the file is missing
  // more space than is free; else `code` with HDF5's errors.
  absl::Status Failed(absl::StatusCode code, absl::string_view what) {
    const std::string stack = h5::ErrorStackText();
    if (failure_ != nullptr && failure_->failed()) return IoStatus();
    const int64_t needed = BytesToAllocate(path_, Size());
    if (MentionsNoSpace(stack) ||
        (failure_ == nullptr && needed > 0 && needed > FreeBytesFor(path_))) {
      absl::Status s = NoSpaceStatus(what, path_, ENOSPC, needed);
      return absl::ResourceExhaustedError(
          absl::StrCat(s.message(), " (HDF5: ", stack, ")"));
    }
    return absl::Status(code, absl::StrCat(what, " '", path_, "': ", stack));
  }

  std::unique_ptr<h5::IoFailure> failure_;  // Outlives the file.
  hid_t file_;
  std::string path_;
  bool parallel_;
  Closer dxpl_;
  int64_t size_ = 0;             // Largest Size() seen, for after the close.
  std::vector<hid_t> datasets_;  // -1: released.
  std::vector<DatasetSpec> specs_;
};

// Opens (`create`: creates, truncating) `path` for writing.
absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> OpenWriter(Communicator& comm,
                                                           const std::string& path,
                                                           const DataFileOptions& options,
                                                           bool create) {
  h5::SilenceErrorPrinting();
  const bool parallel = comm.mpi_fortran_handle().has_value();
  auto failure = parallel ? nullptr : std::make_unique<h5::IoFailure>();
  Closer fapl;
  absl::Status s = h5::FileAccess(comm, options, /*writing=*/true, failure.get(), &fapl);
  if (!s.ok()) return s;
  const hid_t file = create
                         ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get())
                         : H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  if (file < 0) {
    if (failure != nullptr && failure->failed()) {
      return ErrnoStatus(failure->what, path, failure->err);
    }
    const std::string stack = h5::ErrorStackText();
    if (MentionsNoSpace(stack)) {
      return NoSpaceStatus(create ? "cannot create" : "cannot open", path, ENOSPC, -1);
    }
    return absl::InternalError(
        absl::StrCat(create ? "cannot create '" : "cannot open '", path, "': ", stack));
  }
  return std::unique_ptr<Hdf5FileWriter>(new Hdf5Writer(
      file, path, parallel, parallel && options.collective, std::move(failure)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataFileWriter>> DataFileWriter::Create(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> w =
      OpenWriter(comm, path, options, /*create=*/true);
  if (!w.ok()) return w.status();
  return std::unique_ptr<DataFileWriter>(*std::move(w));
}

absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> Hdf5FileWriter::Create(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  return OpenWriter(comm, path, options, /*create=*/true);
}

absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> Hdf5FileWriter::OpenForWrite(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  return OpenWriter(comm, path, options, /*create=*/false);
}

}  // namespace meshckpt
