// Out-of-space errors that say how much space is missing: the file, the
// bytes it still needs and what is free on its filesystem (statvfs), e.g.
//
//   cannot reserve 139264 bytes for '/ckpt/ckpt-2.h5.partial-…': No space left
//   on device; needs 139264 bytes, 4096 free on the filesystem mounted at '/ckpt'
//
// Thread-safe (no shared state).
#ifndef MESHCKPT_IO_FS_DISK_SPACE_H_
#define MESHCKPT_IO_FS_DISK_SPACE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

// ENOSPC or EDQUOT.
bool IsOutOfSpace(int err);

// Bytes an unprivileged writer may still use on the filesystem holding
// `path` (a file or directory; for a missing file, its directory). -1 when
// statvfs fails.
int64_t FreeBytesFor(const std::string& path);

// The mount point of the filesystem holding `path` (as FreeBytesFor); the
// directory itself when it cannot be told.
std::string MountPointOf(const std::string& path);

// How many more bytes `path` must allocate to hold `size` bytes: `size`
// minus the blocks it has (all of `size` when it does not exist).
int64_t BytesToAllocate(const std::string& path, int64_t size);

// ResourceExhausted "<what> '<path>': <strerror(err)>; needs <needed>
// bytes, <free> free on the filesystem mounted at '<mount>'". With `needed`
// < 0 (unknown) the "needs" part is left out.
absl::Status NoSpaceStatus(absl::string_view what, const std::string& path, int err,
                           int64_t needed);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FS_DISK_SPACE_H_
