// The HDF5 implementation of DataFileWriter.
#include <hdf5.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/data_file.h"
#include "io/fs.h"
#include "io/hdf5_common.h"
#include "io/io_pieces.h"
#include "io/string_blob.h"
#include "layout/region.h"

namespace meshckpt {
namespace {

using h5::Closer;
using h5::SelectBox;

std::vector<hsize_t> ToHsize(const std::vector<int64_t>& v) {
  return std::vector<hsize_t>(v.begin(), v.end());
}

class Hdf5Writer final : public DataFileWriter {
 public:
  Hdf5Writer(hid_t file, std::string path, bool parallel, bool collective)
      : file_(file), path_(std::move(path)), parallel_(parallel) {
    dxpl_ = H5Pcreate(H5P_DATASET_XFER);
    if (parallel_) {
      H5Pset_dxpl_mpio(dxpl_, collective ? H5FD_MPIO_COLLECTIVE
                                         : H5FD_MPIO_INDEPENDENT);
    }
  }
  ~Hdf5Writer() override { (void)Close(); }

  absl::StatusOr<int> CreateDataset(const DatasetSpec& spec) override {
    if (spec.dtype == DType::kString) {
      if (parallel_) {
        return absl::InternalError(absl::StrCat(
            "string dataset '", spec.path, "' must be written serially"));
      }
      // Created at Close, once every element is known (io/string_blob.h).
      strings_[static_cast<int>(datasets_.size())].resize(
          Box::FromShape(spec.shape).num_elements());
      datasets_.push_back(-1);
      specs_.push_back(spec);
      return static_cast<int>(datasets_.size() - 1);
    }
    Closer type(h5::TypeFor(spec.dtype));
    absl::StatusOr<hid_t> d = Create(spec, type.get(), spec.shape, spec.chunk_shape);
    if (!d.ok()) return d.status();
    datasets_.push_back(*d);
    specs_.push_back(spec);
    return static_cast<int>(datasets_.size() - 1);
  }

  absl::Status Write(int dataset, const Box& box, const void* data) override {
    const hid_t d = datasets_[dataset];
    Closer type(h5::TypeFor(specs_[dataset].dtype));
    const int64_t esize = DTypeSize(specs_[dataset].dtype);
    const char* base = static_cast<const char*>(data);
    return ForEachIoPiece(box, esize, [&](const Box& piece, int64_t offset) {
      Closer fs, ms;
      absl::Status s = SelectBox(d, piece, &fs, &ms);
      if (s.ok() && H5Dwrite(d, type.get(), ms.get(), fs.get(), dxpl_,
                             base + offset) < 0) {
        s = WriteError(dataset, piece);
      }
      return s;
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
    if (H5Dwrite(d, type.get(), ms.get(), fs.get(), dxpl_, dummy) < 0) {
      return WriteError(dataset, Box());
    }
    return absl::OkStatus();
  }

  absl::Status ReserveSpace() override {
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
    if (specs_[dataset].dtype == DType::kString) return std::vector<StorageBlock>();
    return h5::LocateStorage(datasets_[dataset], DTypeSize(specs_[dataset].dtype));
  }

  absl::Status ReleaseDataset(int dataset) override {
    const hid_t d = datasets_[dataset];
    datasets_[dataset] = -1;
    if (d >= 0 && H5Dclose(d) < 0) {
      return h5::Error(absl::StatusCode::kInternal,
                       absl::StrCat("cannot close dataset '", specs_[dataset].path, "' of"),
                       path_);
    }
    return absl::OkStatus();
  }

  absl::Status WriteStrings(int dataset, const Box& box,
                            const std::string* data) override {
    std::vector<std::string>& all = strings_.at(dataset);
    if (box.rank() == 0) {
      all.at(0) = data[0];
    } else {
      CopyRegionOf(data, box.shape(), Box::FromShape(box.shape()), all.data(),
                   specs_[dataset].shape, box);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (file_ < 0) return absl::OkStatus();
    absl::Status s = WriteStringBlobs();
    bool ok = true;
    for (hid_t d : datasets_) ok &= d < 0 || H5Dclose(d) >= 0;
    datasets_.clear();
    H5Pclose(dxpl_);
    ok &= H5Fclose(file_) >= 0;
    file_ = -1;
    if (!s.ok()) return s;
    if (!ok) return h5::Error(absl::StatusCode::kInternal, "cannot close", path_);
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
    if (spec.fletcher32) H5Pset_fletcher32(dcpl.get());
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    hid_t d = H5Dcreate2(file_, spec.path.c_str(), type, space.get(), lcpl.get(),
                         dcpl.get(), H5P_DEFAULT);
    if (d < 0) {
      return h5::Error(absl::StatusCode::kInternal,
                       absl::StrCat("cannot create dataset '", spec.path, "' in"),
                       path_);
    }
    for (const auto& [name, value] : spec.attributes) {
      Closer atype(H5Tcopy(H5T_C_S1));
      H5Tset_size(atype.get(), std::max<size_t>(1, value.size()));
      Closer aspace(H5Screate(H5S_SCALAR));
      Closer attr(H5Acreate2(d, name.c_str(), atype.get(), aspace.get(),
                             H5P_DEFAULT, H5P_DEFAULT));
      if (attr.get() < 0 || H5Awrite(attr.get(), atype.get(), value.c_str()) < 0) {
        H5Dclose(d);
        return h5::Error(absl::StatusCode::kInternal,
                         absl::StrCat("cannot write attribute '", name,
                                      "' of dataset '", spec.path, "' in"),
                         path_);
      }
    }
    return d;
  }

  // The string datasets, each one uint8 blob (io/string_blob.h).
  absl::Status WriteStringBlobs() {
    for (auto& entry : strings_) {
      const int dataset = entry.first;  // Not a structured binding: clang 14
                                        // cannot capture those in lambdas.
      const std::string blob = EncodeStringBlob(entry.second);
      entry.second.clear();
      DatasetSpec spec = specs_[dataset];
      spec.attributes.emplace_back(
          "string_encoding", "uint64le length of each element, then their bytes");
      const int64_t size = static_cast<int64_t>(blob.size());
      absl::StatusOr<hid_t> d = Create(spec, H5T_STD_U8LE, {size}, {});
      if (!d.ok()) return d.status();
      datasets_[dataset] = *d;
      if (size == 0) continue;
      absl::Status s = ForEachIoPiece(
          Box::FromShape({size}), 1, [&](const Box& piece, int64_t offset) {
            Closer fs, ms;
            absl::Status s = SelectBox(*d, piece, &fs, &ms);
            if (s.ok() && H5Dwrite(*d, H5T_NATIVE_UINT8, ms.get(), fs.get(), dxpl_,
                                   blob.data() + offset) < 0) {
              s = WriteError(dataset, piece);
            }
            return s;
          });
      if (!s.ok()) return s;
    }
    strings_.clear();
    return absl::OkStatus();
  }

  absl::Status WriteError(int dataset, const Box& box) {
    return h5::Error(
        absl::StatusCode::kInternal,
        absl::StrCat("cannot write ", box.ToString(), " of dataset '",
                     specs_[dataset].path, "' to"),
        path_);
  }

  hid_t file_;
  std::string path_;
  bool parallel_;
  hid_t dxpl_;
  std::vector<hid_t> datasets_;  // -1: a string dataset, created at Close.
  std::vector<DatasetSpec> specs_;
  std::map<int, std::vector<std::string>> strings_;  // Row-major elements.
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataFileWriter>> DataFileWriter::Create(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  h5::SilenceErrorPrinting();
  Closer fapl;
  absl::Status s = h5::FileAccess(comm, options, /*writing=*/true, &fapl);
  if (!s.ok()) return s;
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (file < 0) return h5::Error(absl::StatusCode::kInternal, "cannot create", path);
  const bool parallel = comm.mpi_fortran_handle().has_value();
  return std::unique_ptr<DataFileWriter>(
      new Hdf5Writer(file, path, parallel, parallel && options.collective));
}

absl::StatusOr<std::unique_ptr<DataFileWriter>>
DataFileWriter::OpenSerialForAppend(const std::string& path) {
  h5::SilenceErrorPrinting();
  Closer fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  if (file < 0) return h5::Error(absl::StatusCode::kInternal, "cannot open", path);
  return std::unique_ptr<DataFileWriter>(new Hdf5Writer(file, path, false, false));
}

}  // namespace meshckpt
