// LoadStatus: what a restore matched, with TensorFlow's assertions.
//
// Restore walks the checkpoint's object graph and the live one together from
// the root, by child name. Each assertion returns OK or FailedPrecondition
// naming what did not match:
//   AssertConsumed()               every checkpoint value was restored into
//                                  an object and every live object matched;
//   AssertExistingObjectsMatched() every live object matched (the checkpoint
//                                  may hold more);
//   AssertNontrivialMatch()        something beyond the root and the save
//                                  counter matched (as TF: a container of
//                                  the same name counts);
//   AssertSomeValueRestored()      a value (variable or TrackedValue)
//                                  besides the save counter was restored
//                                  (values still deferred do not count):
//                                  the checkpoint is not another model's.
// Objects added later that take a deferred value count as they are added,
// so the same LoadStatus can fail now and pass after the model is built.
// Unused checkpoint values are reported once, on rank 0, when the restore is
// finished with (the LoadStatus and every deferred value are gone), unless
// ExpectPartial() was called, and never after a restore that failed.
//
// CheckpointManager::RestoreOrInitialize may skip damaged newer checkpoints
// before the one it restored; skipped_checkpoints() says which and why.
//
//   absl::StatusOr<LoadStatus> st = ckpt->Restore(path);
//   if (!st.ok()) return st.status();          // I/O or format problem
//   MESHCKPT_RETURN_IF_ERROR(st->AssertExistingObjectsMatched());
#ifndef MESHCKPT_CHECKPOINT_OBJECT_LOAD_STATUS_H_
#define MESHCKPT_CHECKPOINT_OBJECT_LOAD_STATUS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace meshckpt {

namespace internal {
class RestoreSession;
}  // namespace internal

// A checkpoint a restore passed over, and the error restoring it gave.
struct SkippedCheckpoint {
  std::string prefix;
  absl::Status status;
};

class LoadStatus {
 public:
  absl::Status AssertConsumed() const;
  absl::Status AssertExistingObjectsMatched() const;
  absl::Status AssertNontrivialMatch() const;
  absl::Status AssertSomeValueRestored() const;
  // A partial restore is intended: do not report unused values.
  LoadStatus& ExpectPartial();
  // Checkpoint keys no object has taken (yet).
  std::vector<std::string> UnusedKeys() const;
  // Newer checkpoints skipped as damaged before this one was restored,
  // newest first (CheckpointManager with fall_back_to_intact); empty for a
  // plain DTensorCheckpoint::Restore.
  const std::vector<SkippedCheckpoint>& skipped_checkpoints() const { return skipped_; }

 private:
  friend class DTensorCheckpoint;
  friend class CheckpointManager;
  explicit LoadStatus(std::shared_ptr<internal::RestoreSession> session)
      : session_(std::move(session)) {}

  std::shared_ptr<internal::RestoreSession> session_;
  std::vector<SkippedCheckpoint> skipped_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_LOAD_STATUS_H_
