// Regular-file-only reads with size checks, and atomic writes, for tfbundle/.
#include "meshckpt/tfbundle/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace meshckpt::tf {
namespace {

// Constant-initialized: counting costs no start-up work.
std::atomic<int64_t> data_bytes_read{0};

absl::Status Errno(absl::string_view what, const std::string& path, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " '", path, "'"));
}

// O_NONBLOCK so that opening a FIFO without a writer returns at once; it
// changes nothing for the regular files we then accept.
absl::StatusOr<int> OpenRegular(const std::string& path, int64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Errno("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' is not a regular file (a directory, FIFO, socket or device)"));
  }
  *size = static_cast<int64_t>(st.st_size);
  return fd;
}

absl::Status PreadFull(int fd, char* out, size_t n, int64_t offset,
                       const std::string& path, absl::string_view what) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat("cannot read ", what, " from"), path, errno);
    }
    if (r == 0) {
      return absl::DataLossError(absl::StrCat("'", path, "' ended early while reading ",
                                              what, " (the file shrank while open)"));
    }
    out += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
  return absl::OkStatus();
}

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x", rd(), rd());
}

absl::Status SyncDirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) return Errno("cannot fsync directory", dir, err);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RandomAccessFile>> RandomAccessFile::Open(
    const std::string& path) {
  int64_t size = 0;
  absl::StatusOr<int> fd = OpenRegular(path, &size);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<RandomAccessFile>(new RandomAccessFile(path, *fd, size));
}

RandomAccessFile::~RandomAccessFile() { ::close(fd_); }

absl::Status RandomAccessFile::ReadAt(int64_t offset, absl::Span<char> out,
                                      absl::string_view what) const {
  const int64_t n = static_cast<int64_t>(out.size());
  if (offset < 0 || offset > size_ || n > size_ - offset) {
    return absl::DataLossError(absl::StrFormat(
        "%s is [%d, +%d) but '%s' has only %d bytes (truncated or damaged)", what, offset,
        n, path_, size_));
  }
  data_bytes_read.fetch_add(n, std::memory_order_relaxed);
  return PreadFull(fd_, out.data(), out.size(), offset, path_, what);
}

int64_t internal::DataBytesReadForTesting() {
  return data_bytes_read.load(std::memory_order_relaxed);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, int64_t max_bytes) {
  int64_t size = 0;
  absl::StatusOr<int> fd = OpenRegular(path, &size);
  if (!fd.ok()) return fd.status();
  if (size > max_bytes) {
    ::close(*fd);
    return absl::InvalidArgumentError(absl::StrFormat(
        "'%s' has %d bytes, more than the limit of %d for this kind of file", path, size,
        max_bytes));
  }
  std::string data(static_cast<size_t>(size), '\0');
  absl::Status s = PreadFull(*fd, data.data(), data.size(), 0, path, "the file");
  ::close(*fd);
  if (!s.ok()) return s;
  return data;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp-", RandomSuffix());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp, errno);
  const char* p = data.data();
  size_t n = data.size();
  absl::Status status;
  while (n > 0 && status.ok()) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      status = Errno("cannot write", tmp, errno);
      break;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (status.ok() && ::fsync(fd) != 0) status = Errno("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && status.ok()) status = Errno("cannot close", tmp, errno);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = Errno(absl::StrCat("cannot rename '", tmp, "' to"), path, errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncDirOf(path);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace meshckpt::tf
