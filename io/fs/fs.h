// io/fs/ owns the filesystem: bounded reads, atomic writes, fsync, free
// space and the directory lock. It depends on base/ and POSIX only.
//
// The few POSIX file operations the commit protocol needs, as Status.
// Thread-safe (no shared state).
#ifndef MESHCKPT_IO_FS_FS_H_
#define MESHCKPT_IO_FS_FS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

// "<what> '<path>': <strerror>" with a canonical code for `err`: NotFound,
// PermissionDenied, ResourceExhausted (ENOSPC, EDQUOT; saying what is free
// on the filesystem, io/fs/disk_space.h), else Internal.
absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int err);

// fsync of a file that already exists (opened read-only; Linux allows it).
absl::Status SyncFile(const std::string& path);
// fsync of the directory holding `path`, making renames in it durable.
absl::Status SyncParentDir(const std::string& path);
// Allocates disk blocks for the first `bytes` of an existing file (growing
// it to at least that size), so that later writes there cannot fail for
// lack of space and concurrent writers do not fragment it. ResourceExhausted
// when the disk is full, saying how many more bytes the file needs and how
// many are free; OK, reserving nothing, where the filesystem cannot
// preallocate.
absl::Status ReserveFileSpace(const std::string& path, int64_t bytes);
// rename(2): atomic replacement of `to`.
absl::Status RenameFile(const std::string& from, const std::string& to);
// Writes `data` to `path` via a temporary, fsync, rename and directory
// fsync: readers see the old content or the new, never a mix.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);
// Opens `path` for reading without blocking (a FIFO must not hang the
// caller) and checks that it is a regular file: InvalidArgument for a FIFO,
// device, socket or directory. Returns the descriptor (the caller closes it)
// and the file's size.
struct OpenedFile {
  int fd = -1;
  int64_t size = 0;
};
absl::StatusOr<OpenedFile> OpenRegularFileForRead(const std::string& path);
// The whole of a regular file of at most `max_bytes`: DataLoss naming the
// limit for a larger one (read nothing), InvalidArgument for anything that is
// not a regular file. Callers pass a cap that follows from what the file is.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, int64_t max_bytes);
absl::StatusOr<int64_t> FileSize(const std::string& path);
bool FileExists(const std::string& path);
// unlink(2); OK when the file did not exist.
absl::Status RemoveFileIfExists(const std::string& path);
// 16 hex digits, random enough to keep temporaries of concurrent or
// crashed saves apart.
std::string RandomId();

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FS_FS_H_
