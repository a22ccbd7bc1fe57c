// The read-only HDF5 file driver over a descriptor (hdf5_fd_driver.h).
#include "meshckpt/io/transfer/hdf5_fd_driver.h"

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
  int fd;
};

struct File {
  H5FD_t pub;  // First: HDF5 fills and reads it.
  int fd = -1;
  haddr_t eoa = 0;
  haddr_t eof = 0;
  dev_t dev = 0;
  ino_t ino = 0;
};

// off_t is signed: the largest address it holds.
constexpr haddr_t kMaxAddr = (haddr_t{1} << 63) - 1;

File* Cast(H5FD_t* f) { return reinterpret_cast<File*>(f); }
const File* Cast(const H5FD_t* f) { return reinterpret_cast<const File*>(f); }

void PushError(H5E_major_t major, H5E_minor_t minor, const char* func, const char* what,
               int err) {
  H5Epush2(H5E_DEFAULT, __FILE__, func, __LINE__, H5E_ERR_CLS, major, minor, "%s: %s",
           what, std::strerror(err));
}

// `name` only names the file in HDF5's messages: the descriptor is the file.
H5FD_t* Open(const char* /*name*/, unsigned flags, hid_t fapl, haddr_t /*maxaddr*/) {
  const auto* config = static_cast<const Config*>(H5Pget_driver_info(fapl));
  if (config == nullptr ||
      (flags & (H5F_ACC_RDWR | H5F_ACC_TRUNC | H5F_ACC_CREAT)) != 0) {
    PushError(H5E_VFL, H5E_CANTOPENFILE, __func__, "a descriptor file opens read-only",
              EINVAL);
    return nullptr;
  }
  const int fd = ::fcntl(config->fd, F_DUPFD_CLOEXEC, 0);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    PushError(H5E_VFL, H5E_CANTOPENFILE, __func__, "cannot duplicate the descriptor",
              err);
    return nullptr;
  }
  File* f = new File();
  f->fd = fd;
  f->eof = static_cast<haddr_t>(st.st_size);
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  return &f->pub;
}

herr_t Close(H5FD_t* file) {
  File* f = Cast(file);
  ::close(f->fd);  // A duplicate of a read-only descriptor: nothing to lose.
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
  // As sec2's, but not POSIX-compatible: HDF5 must not look at the name.
  if (flags != nullptr) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA |
             H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_AGGREGATE_SMALLDATA;
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
      PushError(H5E_IO, H5E_READERROR, __func__,
                absl::StrCat("cannot read ", size, " bytes at offset ", addr).c_str(),
                errno);
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

herr_t Write(H5FD_t*, H5FD_mem_t, hid_t, haddr_t, size_t, const void*) {
  PushError(H5E_IO, H5E_WRITEERROR, __func__, "a descriptor file is read-only", EBADF);
  return -1;
}

H5FD_class_t MakeClass() {
  H5FD_class_t c;
  std::memset(&c, 0, sizeof(c));
  c.name = "meshckpt_descriptor";
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

absl::Status UseDescriptorDriver(Handle fapl, int fd) {
  const hid_t driver = DriverId();
  const Config config{fd};
  if (driver < 0 || H5Pset_driver(fapl, driver, &config) < 0) {
    return absl::InternalError(
        absl::StrCat("cannot set up HDF5's descriptor driver: ", ErrorStackText()));
  }
  return absl::OkStatus();
}

}  // namespace meshckpt::h5
