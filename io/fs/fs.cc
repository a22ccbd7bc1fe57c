// POSIX file operations as absl::Status (fs.h).
#include "meshckpt/io/fs/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/path.h"
#include "meshckpt/io/fs/disk_space.h"

namespace meshckpt {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int err) {
  if (IsOutOfSpace(err)) return NoSpaceStatus(what, path, err, /*needed=*/-1);
  std::string msg = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open for fsync", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync failed for", path, err);
  return absl::OkStatus();
}

absl::Status ReserveFileSpace(const std::string& path, int64_t bytes) {
  if (bytes <= 0) return absl::OkStatus();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open to reserve space in", path, errno);
  // fallocate(2), not posix_fallocate: glibc's fallback writes every block.
  int rc;
  do {
    rc = ::fallocate(fd, 0, 0, bytes);
  } while (rc != 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && IsOutOfSpace(err)) {  // Says how much is missing.
    return NoSpaceStatus(absl::StrCat("cannot reserve ", bytes, " bytes for"), path, err,
                         BytesToAllocate(path, bytes));
  }
  if (rc != 0 && err != EOPNOTSUPP && err != ENOSYS) {
    return ErrnoStatus(absl::StrCat("cannot reserve ", bytes, " bytes for"), path, err);
  }
  return absl::OkStatus();
}

absl::Status SyncParentDir(const std::string& path) {
  const std::string dir = Dirname(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories; their renames are durable
  // by other means.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    return ErrnoStatus("fsync failed for directory", dir, err);
  }
  return absl::OkStatus();
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("cannot rename to '", to, "' from"), from, errno);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp-", RandomId());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      if (IsOutOfSpace(err)) {
        return NoSpaceStatus("write failed for", tmp, err,
                             static_cast<int64_t>(data.size()));
      }
      return ErrnoStatus("write failed for", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus("fsync failed for", tmp, err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus("close failed for", tmp, err);
  }
  if (absl::Status s = RenameFile(tmp, path); !s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncParentDir(path);
}

absl::StatusOr<OpenedFile> OpenRegularFileForRead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISFIFO(st.st_mode)                         ? "a FIFO"
                       : S_ISDIR(st.st_mode)                        ? "a directory"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                                              : "not a regular file";
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' is ", kind, ", not a regular file; refusing to read it"));
  }
  // O_NONBLOCK only served the open; regular-file reads ignore it anyway.
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return OpenedFile{fd, static_cast<int64_t>(st.st_size)};
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes) {
  absl::StatusOr<OpenedFile> file = OpenRegularFileForRead(path);
  if (!file.ok()) return file.status();
  const int fd = file->fd;
  if (file->size > max_bytes) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("'", path, "' is ", file->size,
                                            " bytes, more than the ", max_bytes,
                                            " such a file can be; refusing to read it"));
  }
  std::string out;
  out.resize(static_cast<size_t>(file->size));
  size_t done = 0;
  while (true) {
    // One byte past the size seen at open tells a growing file from a done one.
    if (done == out.size()) {
      if (static_cast<int64_t>(done) > max_bytes) break;
      out.resize(done + 1);
    }
    const ssize_t n = ::read(fd, &out[done], out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoStatus("read failed for", path, err);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (static_cast<int64_t>(done) > max_bytes) {
    return absl::DataLossError(
        absl::StrCat("'", path, "' grew past the ", max_bytes,
                     " bytes such a file can be while being read"));
  }
  out.resize(done);
  return out;
}

absl::StatusOr<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  return static_cast<int64_t>(st.st_size);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status RemoveFileIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("cannot remove", path, errno);
  }
  return absl::OkStatus();
}

std::string RandomId() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  return absl::StrFormat("%016x", gen());
}

}  // namespace meshckpt
