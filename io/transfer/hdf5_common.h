// Helpers shared by the HDF5 writer and reader. Internal to io/: handles are
// passed as int64_t (HDF5 1.10's hid_t) so this header needs no <hdf5.h>.
#ifndef MESHCKPT_IO_TRANSFER_HDF5_COMMON_H_
#define MESHCKPT_IO_TRANSFER_HDF5_COMMON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/direct_file.h"
#include "meshckpt/layout/box.h"

namespace meshckpt::h5 {

using Handle = int64_t;

// Stops HDF5 from printing its error stack; we turn it into a Status.
void SilenceErrorPrinting();
// The current HDF5 error stack as text, most specific message first.
std::string ErrorStackText();
// `code` error: "<what> '<file>': <HDF5 error stack>".
absl::Status Error(absl::StatusCode code, absl::string_view what, absl::string_view file);

// The HDF5 type of a dtype's elements (caller closes it). Strings: uint8,
// the bytes of their blob (io/format/string_blob.h).
Handle TypeFor(DType dtype);

// The storage blocks of an open dataset (see io/transfer/direct_file.h): one for a
// contiguous dataset, one per chunk (row-major over the chunk grid) for a
// chunked one. Empty when its bytes are not plain elements at fixed offsets:
// filtered, compact, virtual or not (fully) allocated storage.
absl::StatusOr<std::vector<StorageBlock>> LocateStorage(Handle dataset,
                                                        int64_t element_size);

class Closer;
struct IoFailure;  // io/transfer/hdf5_posix_driver.h

// A file access property list into `fapl`: MPI-IO over the communicator
// when it has MPI behind it, else POSIX (the writers' own driver,
// io/transfer/hdf5_posix_driver.h, when `failure` is given). Closing a file being
// written also closes whatever of it is still open (H5F_CLOSE_STRONG), so no
// object keeps it open past its close. (Readers keep the default degree:
// HDF5 refuses to open one file twice with different degrees, and a reader's
// file may also be open elsewhere in the process.)
absl::Status FileAccess(Communicator& comm, const DataFileOptions& options, bool writing,
                        IoFailure* failure, Closer* fapl);

// File and memory dataspaces selecting `box` of a dataset.
absl::Status SelectBox(Handle dataset, const Box& box, Closer* file_space,
                       Closer* mem_space);

// Closes a handle of any kind when it goes out of scope.
class Closer {
 public:
  explicit Closer(Handle h = -1) : h_(h) {}
  ~Closer();
  Closer(const Closer&) = delete;
  Closer& operator=(const Closer&) = delete;
  Handle get() const { return h_; }
  // Closes the current handle and takes `h`.
  void reset(Handle h);
  Handle release() {
    Handle h = h_;
    h_ = -1;
    return h;
  }

 private:
  Handle h_;
};

}  // namespace meshckpt::h5

#endif  // MESHCKPT_IO_TRANSFER_HDF5_COMMON_H_
