// Retention: which checkpoints stay listed and on disk after a save, and the
// state file that lists them. The one implementation behind
// CheckpointManager::Save, Saver::Save and DTensorCheckpoint::Save.
//
// After each save the new checkpoint joins the RetentionList as its newest
// entry (moving there if it was listed already). While more than
// max_to_keep are listed, the oldest leaves the list, and is either
// preserved (kept on disk, no longer listed) by keep_checkpoint_every_n_hours
// or to be deleted. Every rank computes this alike from the same inputs.
// Rank 0 then calls RecordSave, which
//   1. writes the state file of the new checkpoint's directory
//      (StateFileDirectory: where its files are, "/" for "/ckpt-1"): the
//      new checkpoint as model_checkpoint_path and the list, with the new
//      one last, as all_model_checkpoint_paths and their timestamps;
//   2. only then deletes the checkpoints to delete, so that a crash in
//      between leaves a state file that names nothing deleted.
//
// How the three callers use it:
//   CheckpointManager        max_to_keep (nullopt: keep all); rule
//                            kSinceLastPreserved, recorded in the file as
//                            last_preserved_timestamp; relative paths.
//   Saver                    max_to_keep (0: list nothing and delete
//                            nothing; the file names the new one alone);
//                            rule kFixedPeriods from the Saver's creation;
//                            relative or absolute paths.
//   DTensorCheckpoint::Save  keeps everything: the list is what the state
//                            file listed, still on disk and inside the
//                            directory (RetainedFromState), and the new one.
//
//   RetentionList list({/*max_to_keep=*/3, /*every_n_hours=*/0}, /*preserved=*/0);
//   std::vector<std::string> doomed = list.Add("/ckpt/run/ckpt-4", now);
//   if (rank == 0) status = RecordSave({"/ckpt/run"}, list, {"/ckpt/run/ckpt-4", now},
//   doomed);
//
// Thread-compatible. RecordSave and RetainedFromState touch files; the rest
// is computation (StateFilePath and StateAfterSave may ask getcwd).
#ifndef MESHCKPT_CHECKPOINT_STATE_RETENTION_H_
#define MESHCKPT_CHECKPOINT_STATE_RETENTION_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

// A listed checkpoint and when it was saved (seconds since the epoch).
struct RetainedCheckpoint {
  std::string prefix;
  double timestamp = 0;
};

// When a checkpoint leaving the list is preserved rather than deleted.
// `every` is keep_checkpoint_every_n_hours in seconds; nothing is preserved
// when it is not positive.
enum class PreservationRule {
  // tf.train.CheckpointManager: its timestamp is at least `every` after the
  // last preserved one's, and it becomes the last preserved one.
  kSinceLastPreserved,
  // tf.compat.v1.train.Saver: its timestamp is later than the start of the
  // current period plus `every`, and the next period starts `every` later.
  // The first period starts when the Saver is created.
  kFixedPeriods,
};

struct RetentionPolicy {
  // How many checkpoints stay listed: nullopt keeps all; 0 lists none and
  // deletes none. Must not be negative.
  std::optional<int> max_to_keep;
  double keep_checkpoint_every_n_hours = 0;
  PreservationRule rule = PreservationRule::kSinceLastPreserved;
};

// The listed checkpoints, oldest first, and the preservation bookkeeping.
class RetentionList {
 public:
  // `preserved`: with kSinceLastPreserved the last preserved checkpoint's
  // timestamp, with kFixedPeriods the start of the current period.
  explicit RetentionList(RetentionPolicy policy, double preserved = 0,
                         std::vector<RetainedCheckpoint> listed = {});

  // Lists `prefix` (saved at `timestamp`) as the newest, dropping any entry
  // that names it (lexically, NormalizePath), and applies max_to_keep.
  // Returns the prefixes that left the list and were not preserved, oldest
  // first: to be deleted once the state file no longer names them.
  std::vector<std::string> Add(const std::string& prefix, double timestamp);

  const RetentionPolicy& policy() const { return policy_; }
  const std::vector<RetainedCheckpoint>& listed() const { return listed_; }
  std::vector<std::string> ListedPrefixes() const;
  void set_listed(std::vector<RetainedCheckpoint> listed) { listed_ = std::move(listed); }
  double preserved() const { return preserved_; }

 private:
  // Whether a checkpoint leaving at `timestamp` is preserved (and records it).
  bool Preserve(double timestamp);

  RetentionPolicy policy_;
  double preserved_;
  std::vector<RetainedCheckpoint> listed_;
};

// The directory whose state file records the checkpoint at `prefix`: the
// one holding its files. "/ckpt-1" -> "/", "ckpt-1" -> ".", "/tmp/x/ckpt-1"
// -> "/tmp/x".
std::string StateFileDirectory(const std::string& prefix);

// How the state file of `dir` names `prefix`: relative to `dir` when
// `relative` and it lies under `dir`, else absolute. Both are made absolute
// with the working directory first (lexically), so "ckpt-1" in "." and
// "/cwd/ckpt-1" are written alike.
absl::StatusOr<std::string> StateFilePath(const std::string& dir,
                                          const std::string& prefix, bool relative);

// Where a state file goes and how it names checkpoints.
struct StateFileLocation {
  std::string dir;
  std::string latest_filename = kDefaultLatestFilename;
  bool relative_paths = true;
};

// The state file after saving `latest` (already added to `list`): `latest`
// as model_checkpoint_path; `list` as all_model_checkpoint_paths and
// timestamps, with `latest` appended when the list does not end with it
// (as TF does; the Saver with max_to_keep 0 lists nothing else);
// last_preserved_timestamp = list.preserved() under kSinceLastPreserved,
// else 0 (TF's Saver does not record it).
absl::StatusOr<CheckpointState> StateAfterSave(const StateFileLocation& where,
                                               const RetentionList& list,
                                               const RetainedCheckpoint& latest);

// Rank 0, after a save of `latest` whose list.Add returned `doomed`: writes
// StateAfterSave to the state file, then deletes each doomed checkpoint
// (DeleteCheckpoint) unless it is `latest` under another spelling. Stops at
// the first error, which says that the checkpoint was saved: "saved
// '<latest>', then: <error>". Reaches the fault points after_state_file and
// during_sweep (checkpoint/engine/fault_injection.h).
absl::Status RecordSave(const StateFileLocation& where, const RetentionList& list,
                        const RetainedCheckpoint& latest,
                        const std::vector<std::string>& doomed);

// The entries of `state` (the state file of `dir`) that lie inside `dir`
// (IsCheckpointPathInsideDir) and still exist (CheckpointExists), resolved
// against `dir`, each once, with their timestamps (0 where the file has
// none).
std::vector<RetainedCheckpoint> RetainedFromState(const std::string& dir,
                                                  const CheckpointState& state);

// Collective: rank `root`'s `list` on every rank, byte-exact.
absl::Status BroadcastRetained(Communicator& comm, std::vector<RetainedCheckpoint>* list,
                               int root);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_STATE_RETENTION_H_
