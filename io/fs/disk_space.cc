// Out-of-space errors that say what is missing and free (disk_space.h).
#include "meshckpt/io/fs/disk_space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/path.h"

namespace meshckpt {
namespace {

// `path` when it exists, else its directory.
std::string Existing(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? path : Dirname(path);
}

}  // namespace

bool IsOutOfSpace(int err) { return err == ENOSPC || err == EDQUOT; }

int64_t FreeBytesFor(const std::string& path) {
  struct statvfs s;
  if (::statvfs(Existing(path).c_str(), &s) != 0) return -1;
  return static_cast<int64_t>(s.f_bavail) * static_cast<int64_t>(s.f_frsize);
}

std::string MountPointOf(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(Existing(path).c_str(), resolved) == nullptr) return Dirname(path);
  std::string at = resolved;
  struct stat st;
  if (::stat(at.c_str(), &st) != 0) return at;
  if (!S_ISDIR(st.st_mode)) at = Dirname(at);
  // Up the tree while the parent is on the same device.
  while (at != "/") {
    struct stat here, parent;
    const std::string up = Dirname(at);
    if (::stat(at.c_str(), &here) != 0 || ::stat(up.c_str(), &parent) != 0 ||
        here.st_dev != parent.st_dev) {
      break;
    }
    at = up;
  }
  return at;
}

int64_t BytesToAllocate(const std::string& path, int64_t size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return size;
  return std::max<int64_t>(0, size - static_cast<int64_t>(st.st_blocks) * 512);
}

absl::Status NoSpaceStatus(absl::string_view what, const std::string& path, int err,
                           int64_t needed) {
  std::string msg = absl::StrCat(what, " '", path, "': ", std::strerror(err), "; ");
  if (needed >= 0) absl::StrAppend(&msg, "needs ", needed, " bytes, ");
  const int64_t free_bytes = FreeBytesFor(path);
  if (free_bytes >= 0) {
    absl::StrAppend(&msg, free_bytes, needed >= 0 ? "" : " bytes", " free on ");
  } else {
    absl::StrAppend(&msg, "free space unknown on ");
  }
  absl::StrAppend(&msg, "the filesystem mounted at '", MountPointOf(path), "'");
  return absl::ResourceExhaustedError(msg);
}

}  // namespace meshckpt
