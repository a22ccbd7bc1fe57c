// DirectFile: tensor elements moved between memory and a file with POSIX
// pread/pwrite at known offsets, bypassing HDF5 for the bulk data.
//
// HDF5 owns the data file's metadata: it creates datasets and allocates
// their storage (early allocation, fill values never written) and says where
// that storage is (DataFileWriter/DataFileReader::Locate). The storage of a
// dataset is one or more StorageBlocks: row-major arrays of elements at a
// byte offset, one for a contiguous dataset, one per HDF5 chunk otherwise.
// A chunk at the dataset's edge reaches past it; those padding elements
// belong to no one.
//
// Element e (dataset coordinates, inside block b) is at byte
//   b.offset + element_size * ((i0 * S1 + i1) * S2 + ... + in)
// where i = e - b.origin and S = b.shape.
//
// Writes and reads of a box become one pwrite/pread per contiguous run of
// the box in the file (runs that are contiguous in both file and memory
// merge). Writes whose gaps are only padding are packed into one write per
// group of rows; short runs close together are read with one preadv that
// puts each run in place and the gaps in a scratch buffer. Staging never
// exceeds kStagingBytes.
//
//   auto f = DirectFile::Open(path, DirectFile::kWrite);
//   (*f)->Write(block, valid, box, 4, data);
//   (*f)->Sync();
//
// Thread-compatible: one thread uses a DirectFile at a time. Errors name the
// file and the byte range; ENOSPC/EDQUOT map to ResourceExhausted, a read
// past the end of the file to DataLoss.
#ifndef MESHCKPT_IO_TRANSFER_DIRECT_FILE_H_
#define MESHCKPT_IO_TRANSFER_DIRECT_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/layout/box.h"

struct iovec;

namespace meshckpt {

struct StorageBlock {
  std::vector<int64_t> origin;  // Dataset coordinates of the first element.
  std::vector<int64_t> shape;   // Row-major extent in the file.
  int64_t offset = 0;           // Byte offset of the first element.

  Box box() const { return Box::Unchecked(origin, shape); }
  // Bytes from the first element to the end of the block.
  int64_t bytes(int64_t element_size) const;
};

// The block of `blocks` holding all of `box`, re-based so that its first
// element is box's origin (same strides, offset moved); nullopt when no
// single block holds it or the box is empty.
std::optional<StorageBlock> BlockHolding(const std::vector<StorageBlock>& blocks,
                                         const Box& box, int64_t element_size);

class DirectFile {
 public:
  enum Mode { kRead, kWrite };
  // Staging for packed writes and sieved reads is at most this large.
  static constexpr int64_t kStagingBytes = int64_t{8} << 20;

  // Opens an existing file. kWrite opens it write-only without truncating.
  // `start_writeback`: after every few MiB written, ask the kernel to start
  // writing them to disk (sync_file_range) so that a later Sync finds less
  // to do; a hint, ignored where unsupported.
  static absl::StatusOr<std::unique_ptr<DirectFile>> Open(const std::string& path,
                                                          Mode mode,
                                                          bool start_writeback = false);
  ~DirectFile();
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;

  // Writes the elements of `box` (dataset coordinates, inside `block`) from
  // `data`, row-major over `box`. `valid` is the part of the dataset the
  // block covers (block ∩ dataset); the rest of the block is padding that
  // may be overwritten with zeros to merge writes.
  absl::Status Write(const StorageBlock& block, const Box& valid, const Box& box,
                     int64_t element_size, const void* data);

  // Reads `box` (dataset coordinates, inside `block`) into the region
  // `dst_box` (same shape) of a row-major buffer of shape `dst_shape`.
  absl::Status Read(const StorageBlock& block, const Box& box, int64_t element_size,
                    absl::Span<const int64_t> dst_shape, const Box& dst_box, void* dst);

  // fdatasync: what this process wrote is durable.
  absl::Status Sync();
  absl::Status Close();

  const std::string& path() const { return path_; }
  // The descriptor (-1 once closed): to stat the file opened, or to open it
  // again as itself through /proc/self/fd.
  int fd() const { return fd_; }
  // System calls that moved data (for tracing and tests).
  int64_t io_calls() const { return io_calls_; }

 private:
  DirectFile(int fd, std::string path, bool start_writeback)
      : fd_(fd), path_(std::move(path)), start_writeback_(start_writeback) {}

  absl::Status PwriteAll(const char* data, int64_t n, int64_t offset);
  // preadv of `total` bytes at `offset` into `iov` (consumed as filled);
  // partial reads, EINTR and more than IOV_MAX entries are continued.
  absl::Status PreadvAll(std::vector<struct iovec>* iov, int64_t offset, int64_t total);
  absl::Status WritePacked(const StorageBlock& block, const Box& rel_box, int packed_dim,
                           int64_t element_size, const char* data);
  void NoteWritten(int64_t offset, int64_t n);

  int fd_;
  std::string path_;
  bool start_writeback_;
  int64_t writeback_lo_ = 0, writeback_hi_ = 0;  // Not yet handed to the kernel.
  int64_t io_calls_ = 0;
  std::vector<char> staging_;   // Packed writes.
  std::vector<char> gap_sink_;  // Where sieved reads put the gaps.
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_DIRECT_FILE_H_
