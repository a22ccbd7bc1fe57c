// The HDF5 file driver of serial writers: POSIX I/O like HDF5's sec2 driver,
// except that a failed write, truncate or close is never reported to HDF5
// (a failed open is: nothing is open then).
// It is recorded instead (errno and where), later writes are dropped, and
// the writer turns the record into its Status.
//
// Why: HDF5 1.10.8 cannot survive a failed H5Fclose. H5F__dest frees the
// file even when flushing it failed but the ID stays registered, and
// H5close (at exit, or in MPI_Finalize for parallel HDF5) then closes it
// again and crashes (SIGSEGV in H5F__close_cb). A file that failed to write
// is deleted by the save anyway, so dropping its remaining writes lets HDF5
// close and forget it; the error comes from the record, with the errno that
// HDF5's own message would have lost ("HDF5 reported no detail").
//
// Internal to io/; handles are int64_t (hid_t) as in io/transfer/hdf5_common.h.
#ifndef MESHCKPT_IO_TRANSFER_HDF5_POSIX_DRIVER_H_
#define MESHCKPT_IO_TRANSFER_HDF5_POSIX_DRIVER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "meshckpt/io/transfer/hdf5_common.h"

namespace meshckpt::h5 {

// The first I/O failure of a file. Written by the driver, read by the
// writer; one file (and thread) at a time.
struct IoFailure {
  int err = 0;       // errno; 0: nothing failed.
  std::string what;  // "cannot write 48 bytes at offset 0 of"
  int64_t end = 0;   // The end of the failed write (bytes the file needed).
  bool failed() const { return err != 0; }
};

// Makes the file access list `fapl` use the driver, recording into
// `failure`, which must outlive every file opened with the list.
absl::Status UseRecordingPosixDriver(Handle fapl, IoFailure* failure);

}  // namespace meshckpt::h5

#endif  // MESHCKPT_IO_TRANSFER_HDF5_POSIX_DRIVER_H_
