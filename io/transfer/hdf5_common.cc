// HDF5 pieces shared by the writer and the reader: types, errors, storage lookup.
#include "meshckpt/io/transfer/hdf5_common.h"

// io/ sees MPI (MPI_Info, MPI_Comm_f2c) only through parallel HDF5's <hdf5.h>.
#include <hdf5.h>

#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/hdf5_posix_driver.h"

namespace meshckpt::h5 {
namespace {

herr_t CollectMessage(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (err->desc != nullptr && err->desc[0] != '\0') {
    out->push_back(absl::StrCat(err->func_name ? err->func_name : "?", ": ", err->desc));
  }
  return 0;
}

// A custom 16-bit float: sign at bit 15, `exp_bits` exponent bits with
// `bias`, the rest mantissa. float16 is (5, 15), bfloat16 is (8, 127).
hid_t Float16Type(size_t exp_bits, size_t bias) {
  const size_t mant_bits = 15 - exp_bits;
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, mant_bits, exp_bits, 0, mant_bits);
  H5Tset_offset(t, 0);
  H5Tset_precision(t, 16);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, bias);
  return t;
}

// h5py's convention: a compound of "r" and "i".
hid_t ComplexType(hid_t part, size_t part_size) {
  hid_t t = H5Tcreate(H5T_COMPOUND, 2 * part_size);
  H5Tinsert(t, "r", 0, part);
  H5Tinsert(t, "i", part_size, part);
  return t;
}

// h5py's convention for bool: an int8 enum of FALSE and TRUE.
hid_t BoolType() {
  hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  int8_t v = 0;
  H5Tenum_insert(t, "FALSE", &v);
  v = 1;
  H5Tenum_insert(t, "TRUE", &v);
  return t;
}

void MakeInfo(const std::map<std::string, std::string>& hints, MPI_Info* info) {
  MPI_Info_create(info);
  for (const auto& [k, v] : hints) MPI_Info_set(*info, k.c_str(), v.c_str());
}

}  // namespace

absl::Status FileAccess(Communicator& comm, const DataFileOptions& options, bool writing,
                        IoFailure* failure, Closer* fapl) {
  fapl->reset(H5Pcreate(H5P_FILE_ACCESS));
  if (fapl->get() < 0 ||
      H5Pset_libver_bounds(fapl->get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
      (writing && H5Pset_fclose_degree(fapl->get(), H5F_CLOSE_STRONG) < 0) ||
      (options.alignment > 0 &&
       H5Pset_alignment(fapl->get(), options.alignment, options.alignment) < 0)) {
    return absl::InternalError(
        absl::StrCat("cannot make a file access property list: ", ErrorStackText()));
  }
  if (std::optional<int> handle = comm.mpi_fortran_handle()) {
    MPI_Info info;
    MakeInfo(options.mpi_hints, &info);
    const herr_t rc = H5Pset_fapl_mpio(fapl->get(), MPI_Comm_f2c(*handle), info);
    MPI_Info_free(&info);
    if (rc < 0) return absl::InternalError("H5Pset_fapl_mpio failed");
    if (writing) {
      // Creates are collective anyway; let HDF5 do the metadata I/O
      // collectively instead of every rank touching the same blocks.
      H5Pset_all_coll_metadata_ops(fapl->get(), true);
      H5Pset_coll_metadata_write(fapl->get(), true);
    }
    return absl::OkStatus();
  }
  if (failure != nullptr) {
    absl::Status s = UseRecordingPosixDriver(fapl->get(), failure);
    if (!s.ok()) return s;
  }
  if (writing) {
    // A serial writer may create thousands of datasets. The metadata cache
    // bounds the on-disk size of what it holds, but decoded object headers
    // (with their attributes) are several times larger in memory: 10,000
    // datasets held ~45 MiB under the default 32 MiB limit. 2 MiB costs no
    // measurable time (ckpt_bench --mode=small).
    H5AC_cache_config_t mdc;
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    H5Pget_mdc_config(fapl->get(), &mdc);
    mdc.set_initial_size = true;
    mdc.initial_size = 1 << 20;
    mdc.min_size = 1 << 20;
    mdc.max_size = 2 << 20;
    H5Pset_mdc_config(fapl->get(), &mdc);
  }
  return absl::OkStatus();
}

absl::Status SelectBox(Handle dataset, const Box& box, Closer* file_space,
                       Closer* mem_space) {
  file_space->reset(H5Dget_space(dataset));
  if (box.rank() == 0) {
    mem_space->reset(H5Screate(H5S_SCALAR));
  } else {
    std::vector<hsize_t> start(box.origin().begin(), box.origin().end());
    std::vector<hsize_t> count(box.shape().begin(), box.shape().end());
    if (file_space->get() < 0 ||
        H5Sselect_hyperslab(file_space->get(), H5S_SELECT_SET, start.data(), nullptr,
                            count.data(), nullptr) < 0) {
      return absl::InternalError(absl::StrCat("cannot select hyperslab ", box.ToString(),
                                              ": ", ErrorStackText()));
    }
    mem_space->reset(H5Screate_simple(box.rank(), count.data(), nullptr));
  }
  if (file_space->get() < 0 || mem_space->get() < 0) {
    return absl::InternalError(absl::StrCat("cannot make the dataspaces of ",
                                            box.ToString(), ": ", ErrorStackText()));
  }
  return absl::OkStatus();
}

void SilenceErrorPrinting() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string ErrorStackText() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, CollectMessage, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "HDF5 reported no detail";
  if (messages.size() > 3) messages.resize(3);
  return absl::StrJoin(messages, "; ");
}

absl::Status Error(absl::StatusCode code, absl::string_view what,
                   absl::string_view file) {
  return absl::Status(code, absl::StrCat(what, " '", file, "': ", ErrorStackText()));
}

Handle TypeFor(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return Float16Type(5, 15);
    case DType::kBfloat16:
      return Float16Type(8, 127);
    case DType::kFloat32:
      return H5Tcopy(H5T_IEEE_F32LE);
    case DType::kFloat64:
      return H5Tcopy(H5T_IEEE_F64LE);
    case DType::kInt8:
      return H5Tcopy(H5T_STD_I8LE);
    case DType::kInt16:
      return H5Tcopy(H5T_STD_I16LE);
    case DType::kInt32:
      return H5Tcopy(H5T_STD_I32LE);
    case DType::kInt64:
      return H5Tcopy(H5T_STD_I64LE);
    case DType::kUint8:
      return H5Tcopy(H5T_STD_U8LE);
    case DType::kUint16:
      return H5Tcopy(H5T_STD_U16LE);
    case DType::kUint32:
      return H5Tcopy(H5T_STD_U32LE);
    case DType::kUint64:
      return H5Tcopy(H5T_STD_U64LE);
    case DType::kBool:
      return BoolType();
    case DType::kComplex64:
      return ComplexType(H5T_IEEE_F32LE, 4);
    case DType::kComplex128:
      return ComplexType(H5T_IEEE_F64LE, 8);
    case DType::kString:
      return H5Tcopy(H5T_STD_U8LE);  // io/format/string_blob.h
  }
  return -1;
}

absl::StatusOr<std::vector<StorageBlock>> LocateStorage(Handle dataset,
                                                        int64_t element_size) {
  Closer dcpl(H5Dget_create_plist(dataset));
  Closer space(H5Dget_space(dataset));
  if (dcpl.get() < 0 || space.get() < 0) {
    return absl::InternalError(
        absl::StrCat("cannot query dataset storage: ", ErrorStackText()));
  }
  if (H5Pget_nfilters(dcpl.get()) != 0) return std::vector<StorageBlock>();
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return absl::InternalError("cannot query dataset rank");
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_CONTIGUOUS: {
      const haddr_t addr = H5Dget_offset(dataset);
      if (addr == HADDR_UNDEF) return std::vector<StorageBlock>();
      return std::vector<StorageBlock>{
          {std::vector<int64_t>(rank, 0), shape, static_cast<int64_t>(addr)}};
    }
    case H5D_CHUNKED: {
      std::vector<hsize_t> cdims(rank);
      if (H5Pget_chunk(dcpl.get(), rank, cdims.data()) != rank) {
        return absl::InternalError("cannot query chunk shape");
      }
      std::vector<int64_t> chunk(cdims.begin(), cdims.end());
      int64_t chunk_bytes = element_size;
      for (int64_t c : chunk) chunk_bytes *= c;
      std::vector<StorageBlock> blocks;
      std::vector<hsize_t> at(rank, 0);  // Odometer over chunk origins.
      for (int d = 0; d < rank; ++d) {
        if (dims[d] == 0) return blocks;  // No elements, no chunks.
      }
      while (true) {
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info_by_coord(dataset, at.data(), &mask, &addr, &size) < 0) {
          return absl::InternalError(
              absl::StrCat("cannot query chunk storage: ", ErrorStackText()));
        }
        if (addr == HADDR_UNDEF || mask != 0 ||
            static_cast<int64_t>(size) != chunk_bytes) {
          return std::vector<StorageBlock>();
        }
        blocks.push_back({std::vector<int64_t>(at.begin(), at.end()), chunk,
                          static_cast<int64_t>(addr)});
        int d = rank - 1;
        for (; d >= 0; --d) {
          at[d] += cdims[d];
          if (at[d] < dims[d]) break;
          at[d] = 0;
        }
        if (d < 0) return blocks;
      }
    }
    default:
      return std::vector<StorageBlock>();
  }
}

Closer::~Closer() { reset(-1); }

void Closer::reset(Handle h) {
  if (h_ < 0) {
    h_ = h;
    return;
  }
  switch (H5Iget_type(h_)) {
    case H5I_FILE:
      H5Fclose(h_);
      break;
    case H5I_GROUP:
      H5Gclose(h_);
      break;
    case H5I_DATATYPE:
      H5Tclose(h_);
      break;
    case H5I_DATASPACE:
      H5Sclose(h_);
      break;
    case H5I_DATASET:
      H5Dclose(h_);
      break;
    case H5I_ATTR:
      H5Aclose(h_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(h_);
      break;
    default:
      break;
  }
  h_ = h;
}

}  // namespace meshckpt::h5

namespace meshckpt {

std::string Hdf5OpenObjects::ToString() const {
  return absl::StrCat(files, " files, ", datasets, " datasets, ", groups, " groups, ",
                      datatypes, " named types, ", attributes, " attributes");
}

Hdf5OpenObjects CountOpenHdf5Objects() {
  auto count = [](unsigned types) {
    return static_cast<int64_t>(H5Fget_obj_count(H5F_OBJ_ALL, types));
  };
  Hdf5OpenObjects c;
  c.files = count(H5F_OBJ_FILE);
  c.datasets = count(H5F_OBJ_DATASET);
  c.groups = count(H5F_OBJ_GROUP);
  c.datatypes = count(H5F_OBJ_DATATYPE);
  c.attributes = count(H5F_OBJ_ATTR);
  return c;
}

}  // namespace meshckpt
