// The HDF5 file driver of readers that already hold the file open: HDF5
// reads (pread) through a duplicate of a given descriptor and never opens
// anything by name, so it reads the file that descriptor is open on even
// after another file was renamed over its path or it was removed. Read-only.
//
// Why not sec2 on /proc/self/fd/N: HDF5 resolves symbolic links in the names
// of files opened by POSIX-compatible drivers (realpath), which fails for a
// file that was removed, and this driver tells HDF5 it is not one.
//
// Internal to io/; handles are int64_t (hid_t) as in io/transfer/hdf5_common.h.
#ifndef MESHCKPT_IO_TRANSFER_HDF5_FD_DRIVER_H_
#define MESHCKPT_IO_TRANSFER_HDF5_FD_DRIVER_H_

#include "absl/status/status.h"
#include "meshckpt/io/transfer/hdf5_common.h"

namespace meshckpt::h5 {

// Makes the file access list `fapl` read, whatever file name it is given,
// the file `fd` is open on. `fd` stays the caller's (the driver duplicates
// it for each file opened) and must be open when H5Fopen is called.
absl::Status UseDescriptorDriver(Handle fapl, int fd);

}  // namespace meshckpt::h5

#endif  // MESHCKPT_IO_TRANSFER_HDF5_FD_DRIVER_H_
