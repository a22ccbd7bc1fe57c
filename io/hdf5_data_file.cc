// HDF5 implementations of DataFileWriter and DataFileReader.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/data_file.h"
#include "io/fs.h"
#include "io/hdf5_common.h"
#include "io/io_pieces.h"
#include "io/string_blob.h"
#include "layout/region.h"

namespace meshckpt {
namespace {

using h5::Closer;

std::vector<hsize_t> ToHsize(const std::vector<int64_t>& v) {
  return std::vector<hsize_t>(v.begin(), v.end());
}

// File and memory dataspaces selecting `box` of a dataset.
absl::Status SelectBox(hid_t dataset, const Box& box, Closer* file_space,
                       Closer* mem_space) {
  hid_t fs = H5Dget_space(dataset);
  file_space->reset(fs);
  if (box.rank() == 0) {
    mem_space->reset(H5Screate(H5S_SCALAR));
    return absl::OkStatus();
  }
  std::vector<hsize_t> start = ToHsize(box.origin()), count = ToHsize(box.shape());
  if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start.data(), nullptr,
                          count.data(), nullptr) < 0) {
    return absl::InternalError("cannot select hyperslab");
  }
  mem_space->reset(H5Screate_simple(box.rank(), count.data(), nullptr));
  return absl::OkStatus();
}

void MakeInfo(const std::map<std::string, std::string>& hints, MPI_Info* info) {
  MPI_Info_create(info);
  for (const auto& [k, v] : hints) MPI_Info_set(*info, k.c_str(), v.c_str());
}

// A file access property list: MPI-IO over the communicator when it has MPI
// behind it, else POSIX.
absl::StatusOr<hid_t> FileAccess(Communicator& comm,
                                 const DataFileOptions& options, bool writing) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  if (options.alignment > 0) {
    H5Pset_alignment(fapl, options.alignment, options.alignment);
  }
  if (std::optional<int> handle = comm.mpi_fortran_handle()) {
    MPI_Info info;
    MakeInfo(options.mpi_hints, &info);
    const herr_t rc = H5Pset_fapl_mpio(fapl, MPI_Comm_f2c(*handle), info);
    MPI_Info_free(&info);
    if (rc < 0) {
      H5Pclose(fapl);
      return absl::InternalError("H5Pset_fapl_mpio failed");
    }
    if (writing) {
      // Creates are collective anyway; let HDF5 do the metadata I/O
      // collectively instead of every rank touching the same blocks.
      H5Pset_all_coll_metadata_ops(fapl, true);
      H5Pset_coll_metadata_write(fapl, true);
    }
  } else if (writing) {
    // A serial writer may create thousands of datasets. The metadata cache
    // bounds the on-disk size of what it holds, but decoded object headers
    // (with their attributes) are several times larger in memory: 10,000
    // datasets held ~45 MiB under the default 32 MiB limit. 2 MiB costs no
    // measurable time (ckpt_bench --mode=small).
    H5AC_cache_config_t mdc;
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    H5Pget_mdc_config(fapl, &mdc);
    mdc.set_initial_size = true;
    mdc.initial_size = 1 << 20;
    mdc.min_size = 1 << 20;
    mdc.max_size = 2 << 20;
    H5Pset_mdc_config(fapl, &mdc);
  }
  return fapl;
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
                       absl::StrCat("dataset '", path, "' is missing from"),
                       path_);
    }
    Closer dset(d);
    Closer ftype(H5Dget_type(d));
    Closer space(H5Dget_space(d));
    const int ndims = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(std::max(ndims, 0));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    bool ok;
    if (dtype == DType::kString) {  // One uint8 blob (io/string_blob.h).
      ok = ndims == 1 && H5Tequal(ftype.get(), H5T_STD_U8LE) > 0;
    } else {
      Closer want(h5::TypeFor(dtype));
      ok = H5Tequal(ftype.get(), want.get()) > 0 && dims == ToHsize(shape);
    }
    if (!ok) {
      return absl::DataLossError(absl::StrCat(
          "dataset '", path, "' in '", path_, "' has shape [",
          absl::StrJoin(dims, ","), "] or a type that does not match the index's ",
          DTypeName(dtype), " [", absl::StrJoin(shape, ","), "]"));
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
          if (s.ok() && H5Dread(d, type.get(), ms.get(), fs.get(), dxpl_,
                                base + off) < 0) {
            s = ReadError(dataset, piece);
          }
          return s;
        });
  }

  absl::StatusOr<std::vector<StorageBlock>> Locate(int dataset) override {
    if (dtypes_[dataset] == DType::kString) return std::vector<StorageBlock>();
    return h5::LocateStorage(datasets_[dataset], DTypeSize(dtypes_[dataset]));
  }

  absl::Status ReadStrings(int dataset, const Box& box,
                           std::string* out) override {
    auto [it, fresh] = strings_.try_emplace(dataset);
    if (fresh) {
      absl::Status s = ReadStringBlob(dataset, &it->second);
      if (!s.ok()) {
        strings_.erase(it);
        return s;
      }
    }
    const std::vector<std::string>& all = it->second;
    if (box.rank() == 0) {
      out[0] = all.at(0);
    } else {
      CopyRegionOf(all.data(), shapes_[dataset], box, out, box.shape(),
                   Box::FromShape(box.shape()));
    }
    return absl::OkStatus();
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
    absl::Status s = DecodeStringBlob(
        blob, Box::FromShape(shapes_[dataset]).num_elements(), all);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat("string dataset '", names_[dataset],
                                              "' in '", path_, "' is damaged: ",
                                              s.message()));
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
  std::map<int, std::vector<std::string>> strings_;  // Read string datasets.
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataFileWriter>> DataFileWriter::Create(
    Communicator& comm, const std::string& path, const DataFileOptions& options) {
  h5::SilenceErrorPrinting();
  absl::StatusOr<hid_t> fapl = FileAccess(comm, options, /*writing=*/true);
  if (!fapl.ok()) return fapl.status();
  Closer fapl_closer(*fapl);
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, *fapl);
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
  absl::StatusOr<hid_t> fapl = FileAccess(comm, options, /*writing=*/false);
  if (!fapl.ok()) return fapl.status();
  Closer fapl_closer(*fapl);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, *fapl);
  if (file < 0) {
    return h5::Error(absl::StatusCode::kDataLoss, "cannot open HDF5 file", path);
  }
  return std::unique_ptr<DataFileReader>(
      new Hdf5Reader(file, path, comm.mpi_fortran_handle().has_value()));
}

}  // namespace meshckpt
