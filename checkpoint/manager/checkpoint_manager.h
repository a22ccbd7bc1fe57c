// checkpoint/manager/ owns CheckpointManager: numbering, the directory
// lock, recovery of interrupted saves, saving through DTensorCheckpoint, and
// restoring with a match policy and a fallback past damaged checkpoints
// (manager_restore.cc).
// It may use checkpoint/engine/, state/ and object/, and everything below.
//
// CheckpointManager: numbered checkpoints in one directory with a retention
// policy, after tf.train.CheckpointManager.
//
// Save() writes `<directory>/<checkpoint_name>-<N>` through
// DTensorCheckpoint::Write, records it in the `checkpoint` state file (TF's
// CheckpointState, paths relative to the directory), and only then deletes
// what the policy no longer keeps (checkpoint/state/retention.h, the
// retention the Saver and DTensorCheckpoint::Save share):
//   - max_to_keep: the newest N checkpoints stay "managed"; older ones leave
//     the managed set oldest first and are deleted, unless
//   - keep_checkpoint_every_n_hours: a checkpoint leaving the managed set is
//     preserved (kept on disk, no longer listed) when its timestamp is at
//     least n hours after the last preserved one's, and becomes the new last
//     preserved one.
//   - keep_best: a checkpoint also stays managed while the metric reported
//     with Save(..., metric) is among the keep_best best (best_mode min or
//     max; ties go to the newer). A checkpoint saved without a metric never
//     counts as best: only max_to_keep and keep_checkpoint_every_n_hours
//     keep it. The metric is stored in the checkpoint's index
//     (kMetricMetadataKey), so a new manager knows the earlier ones', and the
//     state file stays TensorFlow's CheckpointState.
// The state file lists exactly the managed checkpoints still on disk, so it
// never names a deleted one; the newest checkpoint is never deleted.
//
// RestoreOrInitialize never silently does nothing: it restores the newest
// checkpoint and checks the match the caller asked for (RestoreMatch), and a
// checkpoint that matches nothing is an error. With fall_back_to_intact, a
// newest checkpoint that turns out damaged (DataLoss: failed checksum, short
// file) is skipped for the newest one that restores: rank 0 says so on
// stderr and LoadStatus::skipped_checkpoints() records it.
//
// A new manager over the same directory picks up the managed checkpoints of
// earlier runs from the state file (those still committed and inside the
// directory; timestamps newer than last_preserved_timestamp, as TF does, or
// with keep_best, a metric in their index), with their metrics, plus any
// committed `<checkpoint_name>-<N>` newer than all of those (a job that died
// between committing a checkpoint and writing the state file), and removes
// leftovers of crashed saves (SweepStaleTemporaries). The next Save
// rewrites the state file to match. Save numbers never reuse the name of a
// checkpoint that exists in the directory.
//
// One job per directory: rank 0 holds the directory's DirectoryLock for the
// manager's lifetime (see io/fs/directory_lock.h), taken before anything in the
// directory is swept, so a second job fails in Create instead of mixing its
// checkpoints with this one's.
//
// With CheckpointManagerOptions::async_save, Save returns as soon as the
// values are staged; the rest of the above happens on a background thread,
// and every collective call first waits for it (an error of the background
// part is returned from there).
//
// Every call except the accessors is collective over checkpoint->comm();
// every rank must make the same calls with the same arguments and gets the
// same result. File operations on the directory are done by rank 0. Not
// thread-safe.
//
//   auto ckpt = *DTensorCheckpoint::Create(comm, mesh, {{"model", &model}});
//   CheckpointManagerOptions o;
//   o.max_to_keep = 3;
//   o.step_counter = step;            // an int64 TrackedValue
//   o.checkpoint_interval = 1000;     // Save() skips until 1000 steps passed
//   auto manager = *CheckpointManager::Create(ckpt.get(), "/ckpt/run", o);
//   RestoreResult from = *manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
//   for (...) {
//     ...train, step->set(step->int64() + 1)...
//     absl::StatusOr<std::optional<std::string>> saved = manager->Save();
//   }
#ifndef MESHCKPT_CHECKPOINT_MANAGER_CHECKPOINT_MANAGER_H_
#define MESHCKPT_CHECKPOINT_MANAGER_CHECKPOINT_MANAGER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/checkpoint/engine/async_save.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/load_status.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "meshckpt/io/fs/directory_lock.h"

namespace meshckpt {

struct CheckpointManagerOptions {
  // How many checkpoints stay managed; nullopt keeps every checkpoint (and
  // preserves nothing by age). Must be positive when set.
  std::optional<int> max_to_keep = 5;
  // 0 turns preservation by age off. Must be >= 0.
  double keep_checkpoint_every_n_hours = 0;
  // Checkpoints are `<checkpoint_name>-<N>`: a plain file name, not starting
  // with '.', without the temporary markers ".tmp-" and ".partial-".
  std::string checkpoint_name = "ckpt";
  // An int64 TrackedValue holding the training step. When set, each save
  // records it as the checkpoint's step.
  TrackedValue* step_counter = nullptr;
  // Minimum number of steps between two saves (needs step_counter; >= 0).
  std::optional<int64_t> checkpoint_interval;
  // Seconds since the epoch; default: the real time. Only rank 0's is used.
  std::function<double()> clock;
  std::string latest_filename = kDefaultLatestFilename;
  // I/O options for the manager's saves and restores; default: the
  // checkpoint's own (given to DTensorCheckpoint::Create).
  std::optional<IoOptions> io;
  // When set, Save() is asynchronous (DTensorCheckpoint::SaveAsync): it
  // returns once the values are staged, and the write, commit, state file
  // and deletions follow on a background thread. checkpoints() and
  // latest_checkpoint() include the checkpoint once it has been waited for
  // (WaitUntilFinished, or the next collective call, which waits first).
  std::optional<AsyncSaveOptions> async_save;
  // What to do where the filesystem cannot lock the directory.
  DirectoryLockPolicy directory_lock = DirectoryLockPolicy::kIfSupported;
  // Also keep the keep_best checkpoints with the best metric (see the top of
  // this file); 0 turns it off. Must be >= 0.
  int keep_best = 0;
  BestMode best_mode = BestMode::kMin;
  // RestoreOrInitialize: when the newest checkpoint is damaged (DataLoss),
  // restore the newest older one that is intact instead of failing. On by
  // default: a restart should not die on a torn newest checkpoint while an
  // older good one exists, and the skip is loud (stderr on rank 0) and
  // recorded in the LoadStatus, so never silent. Off: the DataLoss is
  // returned.
  bool fall_back_to_intact = true;
};

// How much RestoreOrInitialize requires to match (TF's LoadStatus
// assertions). Under every policy a checkpoint of which no value but the
// save counter was restored is FailedPrecondition
// (LoadStatus::AssertSomeValueRestored): another model's checkpoint.
enum class RestoreMatch {
  // Every value in the checkpoint restored and every tracked object matched
  // (LoadStatus::AssertConsumed; TF's assert_consumed).
  kAllMatched,
  // Every tracked object matched; the checkpoint may hold more
  // (AssertExistingObjectsMatched).
  kExistingObjectsMatched,
  // Whatever matches is restored; unused values are not reported
  // (ExpectPartial; TF's expect_partial).
  kPartial,
};

// What RestoreOrInitialize did.
struct RestoreResult {
  // The checkpoint restored; nullopt when there was none (values untouched).
  std::optional<std::string> restored_from;
  // Its LoadStatus (set exactly when restored_from is), including the
  // damaged newer checkpoints skipped before it.
  std::optional<LoadStatus> load_status;
};

class CheckpointManager {
 public:
  // Collective. Creates `directory` if needed, sweeps stale temporaries and
  // recovers the managed checkpoints of earlier runs. `checkpoint` must
  // outlive the manager. InvalidArgument for a null checkpoint, an empty
  // directory, max_to_keep <= 0, a negative or non-finite
  // keep_checkpoint_every_n_hours, checkpoint_interval without step_counter
  // (or negative), a step_counter that is not an int64, bad file names.
  // An unparsable state file does not fail Create: the committed
  // `<checkpoint_name>-<N>` checkpoints in the directory are managed instead.
  // FailedPrecondition naming the holder when another job holds the
  // directory's lock.
  static absl::StatusOr<std::unique_ptr<CheckpointManager>> Create(
      DTensorCheckpoint* checkpoint, std::string directory,
      CheckpointManagerOptions options = {});

  // Collective. Saves a checkpoint and applies the retention policy; returns
  // its prefix. With checkpoint_interval set, returns nullopt and saves
  // nothing when a checkpoint was already saved at the current step, or,
  // when `check_interval`, when fewer than checkpoint_interval steps passed
  // since the last save (as TF does).
  //
  // N is `checkpoint_number` when given (>= 0), else save_counter + 1, or the
  // next number after it that no checkpoint in the directory has; the save
  // counter is bumped either way (and restored if the write fails).
  // `metric` (rank 0's is used; InvalidArgument unless finite) is recorded
  // in the checkpoint's index for keep_best.
  // An error after the checkpoint was written (state file, deletion) is
  // returned, but checkpoints() and latest_checkpoint() already include the
  // new checkpoint.
  absl::StatusOr<std::optional<std::string>> Save(
      std::optional<int64_t> checkpoint_number = std::nullopt, bool check_interval = true,
      std::optional<double> metric = std::nullopt);

  // Collective. Waits for an async save in flight until it is committed,
  // recorded and retention applied; returns its status (OK when none).
  absl::Status WaitUntilFinished();

  // Waits for an async save in flight (collective, like every call here).
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  // Collective. Restores latest_checkpoint() when there is one and checks
  // `match`; otherwise returns an empty RestoreResult and leaves the values
  // as they are. FailedPrecondition naming the checkpoint when the match
  // fails or nothing matched. With fall_back_to_intact, a DataLoss restoring
  // it moves on to the next older intact checkpoint in the directory
  // (newest first), restoring everything again from it, so values the
  // failed attempt half-wrote are overwritten wherever the older
  // checkpoint covers them (kPartial: objects it does not cover keep what
  // the failed attempt left); DataLoss listing every skipped checkpoint
  // when none restores. Other errors are returned as they are. The same
  // result on every rank.
  absl::StatusOr<RestoreResult> RestoreOrInitialize(RestoreMatch match);

  // The newest committed checkpoint: the last one saved, or at creation what
  // LatestCheckpoint(directory) found (which may be one the manager does not
  // manage, e.g. a preserved one).
  std::optional<std::string> latest_checkpoint() const { return latest_; }
  // Managed checkpoints, oldest first, as absolute prefixes. Preserved ones
  // are not listed.
  const std::vector<std::string>& checkpoints() const { return checkpoints_; }
  // Absolute, lexically normalized.
  const std::string& directory() const { return directory_; }
  DTensorCheckpoint* checkpoint() const { return checkpoint_; }

 private:
  CheckpointManager(DTensorCheckpoint* checkpoint, std::string directory,
                    CheckpointManagerOptions options);
  // Restores `prefix` and checks `match` (manager_restore.cc).
  absl::StatusOr<LoadStatus> RestoreAndMatch(const std::string& prefix,
                                             RestoreMatch match);
  // Rank 0's committed checkpoints in the directory, newest first, on every
  // rank: the candidates to fall back to.
  absl::StatusOr<std::vector<std::string>> FallbackCandidates();

  DTensorCheckpoint* checkpoint_;
  std::string directory_;
  CheckpointManagerOptions options_;
  std::optional<std::string> latest_;
  RetentionList retention_;               // The managed checkpoints.
  std::vector<std::string> checkpoints_;  // Their prefixes.
  std::optional<int64_t> last_checkpoint_step_;
  std::optional<DirectoryLock> lock_;  // Rank 0's; released with the manager.
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_MANAGER_CHECKPOINT_MANAGER_H_
