// Bounded, hostile-input-safe file access for the TensorFlow readers, and the
// atomic replacement the writer needs. Internal to tfbundle/.
//
// Every open refuses what is not a regular file (a FIFO would block a read
// forever; a directory or device has no meaningful size), and every read is
// checked against the size the file had when opened, so sizes taken from a
// file's contents never drive an allocation larger than the file.
// RandomAccessFile is thread-safe (pread); the functions have no state.
#ifndef MESHCKPT_TFBUNDLE_FILE_IO_H_
#define MESHCKPT_TFBUNDLE_FILE_IO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshckpt::tf {

class RandomAccessFile {
 public:
  // NotFound when missing; InvalidArgument when not a regular file.
  static absl::StatusOr<std::unique_ptr<RandomAccessFile>> Open(const std::string& path);
  ~RandomAccessFile();
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }
  // Fills `out` from `offset`. DataLoss when [offset, offset + out.size())
  // is not inside the file; `what` names the thing being read.
  absl::Status ReadAt(int64_t offset, absl::Span<char> out, absl::string_view what) const;

 private:
  RandomAccessFile(std::string path, int fd, int64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  int64_t size_;
};

// The whole of a regular file; InvalidArgument when larger than max_bytes.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, int64_t max_bytes);

// Writes `data` to `path` through `<path>.tmp-<random>`, fsync and rename,
// then fsyncs the directory: readers see the old file or the new one.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);

bool PathExists(const std::string& path);

namespace internal {

// Bytes this process has read through RandomAccessFile::ReadAt (data files;
// not the index, which ReadWholeFile reads). For tests that check a restore
// reads only what its ranks need.
int64_t DataBytesReadForTesting();

}  // namespace internal

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_FILE_IO_H_
