// HDF5 implementations of DataFileWriter and DataFileReader.
#include <hdf5.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/data_file.h"
#include "io/fs.h"
#include "io/hdf5_common.h"
#include "io/io_pieces.h"

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
    // measurable time (io_bench --small=10000).
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
    const bool strings = spec.dtype == DType::kString;
    if (strings && parallel_) {
      return absl::InternalError(absl::StrCat(
          "string dataset '", spec.path, "' must be written serially"));
    }
    Closer type(strings && spec.binary_strings
                    ? H5Tvlen_create(H5T_STD_U8LE)
                    : h5::TypeFor(spec.dtype));
    std::vector<hsize_t> dims = ToHsize(spec.shape);
    Closer space(spec.shape.empty()
                     ? H5Screate(H5S_SCALAR)
                     : H5Screate_simple(static_cast<int>(dims.size()),
                                        dims.data(), nullptr));
    Closer lcpl(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Closer dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (!spec.chunk_shape.empty() && !spec.shape.empty()) {
      std::vector<hsize_t> chunk = ToHsize(spec.chunk_shape);
      H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    }
    if (spec.fletcher32) H5Pset_fletcher32(dcpl.get());
    if (!strings) {  // HDF5 requires fill values for variable-length types.
      H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
      H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    }
    hid_t d = H5Dcreate2(file_, spec.path.c_str(), type.get(), space.get(),
                         lcpl.get(), dcpl.get(), H5P_DEFAULT);
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
    const hid_t d = datasets_[dataset];
    const int64_t n = box.num_elements();
    Closer fs, ms;
    absl::Status s = SelectBox(d, box, &fs, &ms);
    if (!s.ok()) return s;
    herr_t rc;
    if (specs_[dataset].binary_strings) {
      Closer type(H5Tvlen_create(H5T_STD_U8LE));
      std::vector<hvl_t> v(n);
      for (int64_t i = 0; i < n; ++i) {
        v[i].len = data[i].size();
        v[i].p = const_cast<char*>(data[i].data());
      }
      rc = H5Dwrite(d, type.get(), ms.get(), fs.get(), H5P_DEFAULT, v.data());
    } else {
      Closer type(h5::TypeFor(DType::kString));
      std::vector<const char*> v(n);
      for (int64_t i = 0; i < n; ++i) v[i] = data[i].c_str();
      rc = H5Dwrite(d, type.get(), ms.get(), fs.get(), H5P_DEFAULT, v.data());
    }
    return rc < 0 ? WriteError(dataset, box) : absl::OkStatus();
  }

  absl::Status Close() override {
    if (file_ < 0) return absl::OkStatus();
    bool ok = true;
    for (hid_t d : datasets_) ok &= d < 0 || H5Dclose(d) >= 0;
    datasets_.clear();
    H5Pclose(dxpl_);
    ok &= H5Fclose(file_) >= 0;
    file_ = -1;
    if (!ok) return h5::Error(absl::StatusCode::kInternal, "cannot close", path_);
    return absl::OkStatus();
  }

 private:
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
  std::vector<hid_t> datasets_;
  std::vector<DatasetSpec> specs_;
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
    bool binary = false;
    bool type_ok;
    if (dtype == DType::kString) {
      const H5T_class_t c = H5Tget_class(ftype.get());
      binary = c == H5T_VLEN;
      type_ok = (c == H5T_STRING && H5Tis_variable_str(ftype.get()) > 0) ||
                binary;
    } else {
      Closer want(h5::TypeFor(dtype));
      type_ok = H5Tequal(ftype.get(), want.get()) > 0;
    }
    Closer space(H5Dget_space(d));
    const int ndims = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(std::max(ndims, 0));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    if (!type_ok || dims != ToHsize(shape)) {
      return absl::DataLossError(absl::StrCat(
          "dataset '", path, "' in '", path_, "' has shape [",
          absl::StrJoin(dims, ","), "] and a type that ",
          type_ok ? "matches" : "does not match", " the index's ",
          DTypeName(dtype), " [", absl::StrJoin(shape, ","), "]"));
    }
    datasets_.push_back(dset.release());
    dtypes_.push_back(dtype);
    binary_.push_back(binary);
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
    const hid_t d = datasets_[dataset];
    const int64_t n = box.num_elements();
    Closer fs, ms;
    absl::Status s = SelectBox(d, box, &fs, &ms);
    if (!s.ok()) return s;
    if (binary_[dataset]) {
      Closer type(H5Tvlen_create(H5T_STD_U8LE));
      std::vector<hvl_t> v(n);
      if (H5Dread(d, type.get(), ms.get(), fs.get(), dxpl_, v.data()) < 0) {
        return ReadError(dataset, box);
      }
      for (int64_t i = 0; i < n; ++i) {
        out[i].assign(static_cast<const char*>(v[i].p), v[i].len);
      }
      H5Dvlen_reclaim(type.get(), ms.get(), H5P_DEFAULT, v.data());
    } else {
      Closer type(h5::TypeFor(DType::kString));
      std::vector<char*> v(n, nullptr);
      if (H5Dread(d, type.get(), ms.get(), fs.get(), dxpl_, v.data()) < 0) {
        return ReadError(dataset, box);
      }
      for (int64_t i = 0; i < n; ++i) out[i] = v[i] ? v[i] : "";
      H5Dvlen_reclaim(type.get(), ms.get(), H5P_DEFAULT, v.data());
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
  std::vector<bool> binary_;
  std::vector<std::string> names_;
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
  if (!FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("data file '", path, "' does not exist"));
  }
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
