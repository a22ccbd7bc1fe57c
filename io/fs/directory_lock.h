// DirectoryLock: one job per checkpoint directory.
//
// Two jobs saving into one directory overwrite each other's checkpoints,
// delete each other's files through retention and sweeps, and resume from
// each other's state. The lock makes the second job fail at start instead.
//
// Mechanism: an open-file-description lock (fcntl F_OFD_SETLK, falling back
// to a classic POSIX record lock on kernels without it) on
// `<dir>/.meshckpt-lock`, which also records the holder ("host=H pid=P
// since=T"). The kernel (or the file server) drops the lock when the holding
// process dies, however it dies, so a dead job's lock is taken over by the
// next one with no stale-lock heuristics; the file itself stays and is
// simply overwritten. Record locks are the kind that Lustre (mounted with
// -o flock), GPFS/Spectrum Scale, BeeGFS and NFS (v4, or v3 with lockd)
// make coherent across nodes; see docs/reliability.md for what each does and
// what a user must guarantee where a filesystem cannot lock.
//
// Within one process, locks on the same directory are shared (reference
// counted): a CheckpointManager and a Saver of the same job may both hold
// it. Thread-safe.
//
//   absl::StatusOr<DirectoryLock> lock =
//       DirectoryLock::Acquire("/ckpt/run", DirectoryLockPolicy::kIfSupported);
//   if (!lock.ok()) return lock.status();  // FailedPrecondition: in use
#ifndef MESHCKPT_IO_FS_DIRECTORY_LOCK_H_
#define MESHCKPT_IO_FS_DIRECTORY_LOCK_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace meshckpt {

enum class DirectoryLockPolicy {
  // Fail with FailedPrecondition when the filesystem cannot lock.
  kRequire,
  // Lock where the filesystem can; elsewhere go on unlocked (held() is
  // false and warning() says why): the user guarantees one job per
  // directory.
  kIfSupported,
  // Take no lock at all (the user guarantees one job per directory).
  kNone,
};

inline constexpr char kDirectoryLockFilename[] = ".meshckpt-lock";

class DirectoryLock {
 public:
  // Locks `dir` (which must exist). FailedPrecondition naming the holder's
  // host and pid when another process holds it; PermissionDenied when the
  // lock file cannot be created; FailedPrecondition under kRequire when the
  // filesystem cannot lock.
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& dir,
                                               DirectoryLockPolicy policy);

  DirectoryLock(DirectoryLock&&) = default;
  DirectoryLock& operator=(DirectoryLock&&) = default;
  ~DirectoryLock();

  // False when nothing is locked (kNone, or kIfSupported on a filesystem
  // that cannot lock).
  bool held() const { return entry_ != nullptr; }
  // Why the directory is not locked, for the caller to print; empty when
  // held() or under kNone.
  const std::string& warning() const { return warning_; }
  const std::string& path() const { return path_; }

  struct Entry;  // The process-wide record of one locked file.

 private:
  DirectoryLock(std::shared_ptr<Entry> entry, std::string path, std::string warning)
      : entry_(std::move(entry)), path_(std::move(path)), warning_(std::move(warning)) {}

  std::shared_ptr<Entry> entry_;
  std::string path_;
  std::string warning_;
};

// The locks of the directories an object has saved into, held until the
// object goes away: for APIs that take a path per save (Saver,
// DTensorCheckpoint::Save) rather than one directory up front. Warnings for
// filesystems that cannot lock are printed to stderr once per directory.
// Not thread-safe.
class DirectoryLockSet {
 public:
  // Locks `dir` unless this set holds it already.
  absl::Status Hold(const std::string& dir, DirectoryLockPolicy policy);

 private:
  std::map<std::string, DirectoryLock> held_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FS_DIRECTORY_LOCK_H_
