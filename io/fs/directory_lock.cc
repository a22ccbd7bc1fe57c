// DirectoryLock (directory_lock.h): record locks on `<dir>/.meshckpt-lock`,
// shared within a process through a registry keyed by the file's identity.
#include "meshckpt/io/fs/directory_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "meshckpt/base/path.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {

struct DirectoryLock::Entry {
  int fd = -1;
  pid_t pid = 0;  // A forked child is another process: it does not share.
  ~Entry() {
    if (fd >= 0) ::close(fd);  // Closing the description releases the lock.
  }
};

namespace {

using FileId = std::pair<dev_t, ino_t>;

constexpr size_t kHolderLineBytes = 160;

// Locks this process holds, so that a second holder in the same job shares
// the first one's descriptor. Sharing matters beyond convenience: with
// classic POSIX locks, closing any descriptor of the file would drop the
// lock, so the file is opened once per process.
struct Registry {
  std::mutex mu;
  std::map<FileId, std::weak_ptr<DirectoryLock::Entry>> held;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

// errno values that mean "this filesystem does not do record locks".
bool LockingUnsupported(int err) {
  return err == ENOLCK || err == ENOSYS || err == EOPNOTSUPP || err == EROFS;
}

// Tries an exclusive, non-blocking lock on the whole file. Returns 0 or an
// errno (EAGAIN/EACCES: held elsewhere).
int TryLock(int fd) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
#ifdef F_OFD_SETLK
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
  if (errno != EINVAL) return errno;
  std::memset(&fl, 0, sizeof(fl));  // Kernel without OFD locks.
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
#endif
  return ::fcntl(fd, F_SETLK, &fl) == 0 ? 0 : errno;
}

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return "unknown-host";
  return host;
}

// What the holder wrote into the lock file, on one line.
std::string DescribeHolder(int fd) {
  char buf[512];
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "an unknown process (the lock file names no holder)";
  absl::string_view text(buf, static_cast<size_t>(n));
  text = text.substr(0, text.find('\n'));
  return std::string(absl::StripAsciiWhitespace(text));
}

// Best effort: the lock is what excludes other jobs; the holder line only
// makes their error message useful. It is written over the old one, padded
// to a fixed width, so that on a full disk it reuses the file's block
// instead of needing a new one (a job that cannot save may still restore).
void RecordHolder(int fd) {
  std::string line = absl::StrCat(
      "host=", HostName(), " pid=", ::getpid(), " since=",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()));
  if (line.size() < kHolderLineBytes - 1) line.resize(kHolderLineBytes - 1, ' ');
  line.push_back('\n');
  (void)!::pwrite(fd, line.data(), line.size(), 0);
}

}  // namespace

DirectoryLock::~DirectoryLock() = default;

absl::StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir,
                                                     DirectoryLockPolicy policy) {
  const std::string path = JoinPath(dir, kDirectoryLockFilename);
  if (policy == DirectoryLockPolicy::kNone) return DirectoryLock(nullptr, path, "");

  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> guard(registry.mu);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    auto it = registry.held.find({st.st_dev, st.st_ino});
    if (it != registry.held.end()) {
      std::shared_ptr<Entry> entry = it->second.lock();
      if (entry != nullptr && entry->pid == ::getpid()) {
        return DirectoryLock(std::move(entry), path, "");
      }
    }
  }

  auto unlocked = [&](int err) -> absl::StatusOr<DirectoryLock> {
    std::string why = absl::StrCat("cannot lock checkpoint directory '", dir, "' (", path,
                                   ": ", std::strerror(err),
                                   "); this filesystem does not support record locks");
    if (policy == DirectoryLockPolicy::kRequire) {
      return absl::FailedPreconditionError(absl::StrCat(
          why,
          ". Mount it with lock support (Lustre: -o flock; NFS: lockd/v4) "
          "or choose DirectoryLockPolicy::kIfSupported and make sure only one "
          "job uses the directory"));
    }
    return DirectoryLock(nullptr, path,
                         absl::StrCat(why,
                                      "; going on unlocked: only one job may use "
                                      "this directory at a time"));
  };

  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("checkpoint directory '", dir, "' does not exist"));
    }
    if (LockingUnsupported(errno)) return unlocked(errno);
    return ErrnoStatus("cannot open the lock file of checkpoint directory", path, errno);
  }
  auto entry = std::make_shared<Entry>();
  entry->fd = fd;
  entry->pid = ::getpid();
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock file '", path, "' is not a regular file"));
  }
  const int err = TryLock(fd);
  if (err == EAGAIN || err == EACCES) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint directory '", dir, "' is in use by another job: ", DescribeHolder(fd),
        " holds its lock (", path,
        "). Two jobs in one directory would overwrite and delete each other's "
        "checkpoints; use another directory or stop the other job"));
  }
  if (err != 0) {
    if (LockingUnsupported(err)) return unlocked(err);
    return ErrnoStatus("cannot lock checkpoint directory through", path, err);
  }
  RecordHolder(fd);
  registry.held[{st.st_dev, st.st_ino}] = entry;
  return DirectoryLock(std::move(entry), path, "");
}

absl::Status DirectoryLockSet::Hold(const std::string& dir, DirectoryLockPolicy policy) {
  if (held_.count(dir) != 0) return absl::OkStatus();
  absl::StatusOr<DirectoryLock> lock = DirectoryLock::Acquire(dir, policy);
  if (!lock.ok()) return lock.status();
  if (!lock->warning().empty()) {
    std::fprintf(stderr, "meshckpt: warning: %s\n", lock->warning().c_str());
  }
  held_.emplace(dir, *std::move(lock));
  return absl::OkStatus();
}

}  // namespace meshckpt
