// Retention: which checkpoints stay listed and on disk after a save, and the
// state file that lists them. The one implementation behind
// CheckpointManager::Save, Saver::Save and DTensorCheckpoint::Save.
//
// After each save the new checkpoint joins the RetentionList as its newest
// entry (moving there if it was listed already). While more than
// max_to_keep are listed, the oldest leaves the list, and is either
// preserved (kept on disk, no longer listed) by keep_checkpoint_every_n_hours
// or to be deleted. With keep_best N, a checkpoint also stays listed while
// its metric is among the N best of the listed ones (Orbax's best_fn /
// best_mode); one without a metric never counts as best and stays only by
// recency. Every rank computes this alike from the same inputs.
// Rank 0 then calls RecordSave, which
//   1. writes the state file of the new checkpoint's directory
//      (StateFileDirectory: where its files are, "/" for "/ckpt-1"): the
//      new checkpoint as model_checkpoint_path and the list, with the new
//      one last, as all_model_checkpoint_paths and their timestamps;
//   2. only then deletes the checkpoints to delete, so that a crash in
//      between leaves a state file that names nothing deleted.
//
// How the three callers use it:
//   CheckpointManager        max_to_keep (nullopt: keep all), keep_best;
//                            rule kSinceLastPreserved, recorded in the file
//                            as last_preserved_timestamp; relative paths.
//                            Metrics live in each checkpoint's index
//                            (kMetricMetadataKey), not in the state file,
//                            which stays TensorFlow's CheckpointState.
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

// The index user-metadata key under which CheckpointManager records a
// checkpoint's metric (printed with %.17g, so it reads back bit for bit).
inline constexpr char kMetricMetadataKey[] = "meshckpt.metric";

// A listed checkpoint, when it was saved (seconds since the epoch) and the
// metric the user reported for it, if any.
struct RetainedCheckpoint {
  // A constructor rather than an aggregate, so that {prefix, timestamp}
  // stays valid (and warning-free) without a metric.
  RetainedCheckpoint() = default;
  RetainedCheckpoint(std::string prefix, double timestamp,
                     std::optional<double> metric = std::nullopt)
      : prefix(std::move(prefix)), timestamp(timestamp), metric(metric) {}

  std::string prefix;
  double timestamp = 0;
  std::optional<double> metric;
};

// Which metric is best for keep_best.
enum class BestMode { kMin, kMax };

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
  // Checkpoints whose metric is among the keep_best best of the listed ones
  // stay listed too, beyond max_to_keep (0: off). Equal metrics: the newer
  // is better, as it has trained longer. Only matters when max_to_keep is
  // positive (otherwise nothing leaves the list anyway).
  int keep_best = 0;
  BestMode best_mode = BestMode::kMin;
};

// The listed checkpoints, oldest first, and the preservation bookkeeping.
class RetentionList {
 public:
  // `preserved`: with kSinceLastPreserved the last preserved checkpoint's
  // timestamp, with kFixedPeriods the start of the current period.
  explicit RetentionList(RetentionPolicy policy, double preserved = 0,
                         std::vector<RetainedCheckpoint> listed = {});

  // Lists `prefix` (saved at `timestamp`, with `metric`) as the newest,
  // dropping any entry that names it (lexically, NormalizePath), and applies
  // max_to_keep and keep_best: every entry neither among the newest
  // max_to_keep nor among the keep_best best leaves, oldest first. Returns
  // the prefixes that left the list and were not preserved, oldest first: to
  // be deleted once the state file no longer names them. The newest entry
  // never leaves (max_to_keep is positive or nothing leaves).
  std::vector<std::string> Add(const std::string& prefix, double timestamp,
                               std::optional<double> metric = std::nullopt);

  const RetentionPolicy& policy() const { return policy_; }
  const std::vector<RetainedCheckpoint>& listed() const { return listed_; }
  std::vector<std::string> ListedPrefixes() const;
  void set_listed(std::vector<RetainedCheckpoint> listed) { listed_ = std::move(listed); }
  double preserved() const { return preserved_; }

 private:
  // Whether a checkpoint leaving at `timestamp` is preserved (and records it).
  bool Preserve(double timestamp);
  // Indices into listed_ of the keep_best best entries with a metric.
  std::vector<size_t> BestIndices() const;

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

// The metric CheckpointManager recorded in the index of `prefix`; nullopt
// when it has none. DataLoss when the index cannot be read or the recorded
// metric is not a finite number.
absl::StatusOr<std::optional<double>> ReadCheckpointMetric(const std::string& prefix);

// Collective: rank `root`'s `list` on every rank, byte-exact (metrics too).
absl::Status BroadcastRetained(Communicator& comm, std::vector<RetainedCheckpoint>* list,
                               int root);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_STATE_RETENTION_H_
