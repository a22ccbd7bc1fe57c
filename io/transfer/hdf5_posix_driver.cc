// The serial writers' HDF5 file driver: POSIX I/O whose failures never leave a file
// half-closed.
#include "meshckpt/io/transfer/hdf5_posix_driver.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace meshckpt::h5 {
namespace {

// What the file access list carries (copied by HDF5 with memcpy).
struct Config {
  IoFailure* failure;
};

struct File {
  H5FD_t pub;  // First: HDF5 fills and reads it.
  int fd = -1;
  haddr_t eoa = 0;
  haddr_t eof = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  IoFailure* failure = nullptr;
};

// off_t is signed: the largest address it holds.
constexpr haddr_t kMaxAddr = (haddr_t{1} << 63) - 1;

File* Cast(H5FD_t* f) { return reinterpret_cast<File*>(f); }
const File* Cast(const H5FD_t* f) { return reinterpret_cast<const File*>(f); }

void Record(File* f, int err, std::string what, int64_t end) {
  if (f->failure == nullptr || f->failure->failed()) return;
  f->failure->err = err;
  f->failure->what = std::move(what);
  f->failure->end = end;
}

H5FD_t* Open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  const auto* config = static_cast<const Config*>(H5Pget_driver_info(fapl));
  int oflags = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
  if (flags & H5F_ACC_TRUNC) oflags |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) oflags |= O_CREAT;
  if (flags & H5F_ACC_EXCL) oflags |= O_EXCL;
  const int fd = ::open(name, oflags | O_CLOEXEC, 0666);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    // Not recorded: HDF5 tries to open a file it creates before creating
    // it, and reports a failed open itself (there is nothing to close).
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL,
             H5E_CANTOPENFILE, "cannot open '%s': %s", name, std::strerror(err));
    return nullptr;
  }
  File* f = new File();
  f->fd = fd;
  f->eof = static_cast<haddr_t>(st.st_size);
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->failure = config != nullptr ? config->failure : nullptr;
  return &f->pub;
}

// Never fails: HDF5 cannot survive a failed file close (see the header).
herr_t Close(H5FD_t* file) {
  File* f = Cast(file);
  if (::close(f->fd) != 0) Record(f, errno, "cannot close", -1);
  delete f;
  return 0;
}

int Compare(const H5FD_t* a, const H5FD_t* b) {
  const File* x = Cast(a);
  const File* y = Cast(b);
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
  return 0;
}

herr_t Query(const H5FD_t*, unsigned long* flags) {
  // As sec2's, without SWMR.
  if (flags != nullptr) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA |
             H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_AGGREGATE_SMALLDATA |
             H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
  }
  return 0;
}

haddr_t GetEoa(const H5FD_t* file, H5FD_mem_t) { return Cast(file)->eoa; }

herr_t SetEoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  Cast(file)->eoa = addr;
  return 0;
}

haddr_t GetEof(const H5FD_t* file, H5FD_mem_t) { return Cast(file)->eof; }

herr_t GetHandle(H5FD_t* file, hid_t, void** handle) {
  *handle = &Cast(file)->fd;
  return 0;
}

herr_t Read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  File* f = Cast(file);
  char* out = static_cast<char*>(buf);
  while (size > 0) {
    const ssize_t n =
        ::pread(f->fd, out, std::min<size_t>(size, 1 << 30), static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_IO,
               H5E_READERROR, "cannot read %zu bytes at offset %llu: %s", size,
               static_cast<unsigned long long>(addr), std::strerror(err));
      return -1;
    }
    if (n == 0) {  // Past the end of the file: zeros, as sec2.
      std::memset(out, 0, size);
      break;
    }
    out += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Never fails (see the header); the first failure is recorded and every
// later write is dropped.
herr_t Write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size,
             const void* buf) {
  File* f = Cast(file);
  if (f->failure != nullptr && f->failure->failed()) return 0;
  const haddr_t start = addr;
  const size_t total = size;
  const char* in = static_cast<const char*>(buf);
  while (size > 0) {
    const ssize_t n =
        ::pwrite(f->fd, in, std::min<size_t>(size, 1 << 30), static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Record(f, errno,
             absl::StrCat("cannot write ", total, " bytes at offset ", start, " of"),
             static_cast<int64_t>(start + total));
      return 0;
    }
    in += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  f->eof = std::max(f->eof, addr);
  return 0;
}

// Sets the file's size to the end of what HDF5 allocated. Never fails.
herr_t Truncate(H5FD_t* file, hid_t, hbool_t) {
  File* f = Cast(file);
  if (f->eoa == f->eof || (f->failure != nullptr && f->failure->failed())) return 0;
  if (::ftruncate(f->fd, static_cast<off_t>(f->eoa)) != 0) {
    Record(f, errno, absl::StrCat("cannot set to ", f->eoa, " bytes the size of"),
           static_cast<int64_t>(f->eoa));
    return 0;
  }
  f->eof = f->eoa;
  return 0;
}

H5FD_class_t MakeClass() {
  H5FD_class_t c;
  std::memset(&c, 0, sizeof(c));
  c.name = "meshckpt_recording_posix";
  c.maxaddr = kMaxAddr;
  c.fc_degree = H5F_CLOSE_WEAK;
  c.fapl_size = sizeof(Config);
  c.open = Open;
  c.close = Close;
  c.cmp = Compare;
  c.query = Query;
  c.get_eoa = GetEoa;
  c.set_eoa = SetEoa;
  c.get_eof = GetEof;
  c.get_handle = GetHandle;
  c.read = Read;
  c.write = Write;
  c.truncate = Truncate;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::copy(map, map + H5FD_MEM_NTYPES, c.fl_map);
  return c;
}

// Registered once per HDF5 library lifetime (H5close drops it).
hid_t DriverId() {
  static const H5FD_class_t kClass = MakeClass();
  static hid_t id = -1;
  if (id < 0 || H5Iis_valid(id) <= 0) id = H5FDregister(&kClass);
  return id;
}

}  // namespace

absl::Status UseRecordingPosixDriver(Handle fapl, IoFailure* failure) {
  const hid_t driver = DriverId();
  const Config config{failure};
  if (driver < 0 || H5Pset_driver(fapl, driver, &config) < 0) {
    return absl::InternalError(
        absl::StrCat("cannot set up HDF5's file driver: ", ErrorStackText()));
  }
  return absl::OkStatus();
}

}  // namespace meshckpt::h5
