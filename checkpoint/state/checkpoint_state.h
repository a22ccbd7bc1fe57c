// checkpoint/state/ owns the `checkpoint` state file, retention
// (max_to_keep, keep every n hours, keep best) and finding the latest checkpoint,
// shared by the manager, the Saver and DTensorCheckpoint::Save. It may use
// checkpoint/engine/, io/, proto/ (in its .cc only) and base/.
//
// The `checkpoint` state file and finding the newest checkpoint.
//
// The state file is TensorFlow's CheckpointState in protobuf text format
// (proto/checkpoint_state.proto; here the plain struct CheckpointState),
// kept in the checkpoints' directory and replaced atomically (temp file,
// fsync, rename, directory fsync). Paths in it are relative to the directory
// by default; absolute paths are accepted when reading. Which checkpoints it
// lists after a save is decided in checkpoint/state/retention.h.
//
// LatestCheckpoint returns the newest checkpoint (by the commit time its
// index records) that is committed and intact (index decodes, data file
// present with its committed size), among those the state file names inside
// the directory and those whose index lies directly in it. So a checkpoint
// committed by a job that died before updating the state file still wins,
// and a damaged newest one falls back to the newest intact one.
//
//   absl::StatusOr<std::string> p = LatestCheckpoint("/ckpt/run");
//   if (absl::IsNotFound(p.status())) { /* start from scratch */ }
//
// Pure file operations (no communicator): callers decide which rank calls
// them. Thread-compatible.
#ifndef MESHCKPT_CHECKPOINT_STATE_CHECKPOINT_STATE_H_
#define MESHCKPT_CHECKPOINT_STATE_CHECKPOINT_STATE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

inline constexpr char kDefaultLatestFilename[] = "checkpoint";
// A state file lists a few paths; anything this large is not one (and is
// refused rather than read into memory).
inline constexpr int64_t kMaxStateFileBytes = int64_t{16} << 20;

// What a state file holds. Field names match TensorFlow's CheckpointState,
// so that either library reads the other's file.
struct CheckpointState {
  // The newest checkpoint prefix.
  std::string model_checkpoint_path;
  // Checkpoints not yet deleted, oldest first; the newest is last.
  std::vector<std::string> all_model_checkpoint_paths;
  // Seconds since the epoch, parallel to all_model_checkpoint_paths (a file
  // from elsewhere may have fewer).
  std::vector<double> all_model_checkpoint_timestamps;
  // Time of the newest checkpoint kept by keep_checkpoint_every_n_hours
  // (CheckpointManager); 0 when none was.
  double last_preserved_timestamp = 0;

  bool operator==(const CheckpointState& o) const {
    return model_checkpoint_path == o.model_checkpoint_path &&
           all_model_checkpoint_paths == o.all_model_checkpoint_paths &&
           all_model_checkpoint_timestamps == o.all_model_checkpoint_timestamps &&
           last_preserved_timestamp == o.last_preserved_timestamp;
  }
  bool operator!=(const CheckpointState& o) const { return !(*this == o); }
};

// NotFound when missing; DataLoss when it does not parse. Paths are returned
// as written in the file.
absl::StatusOr<CheckpointState> ReadCheckpointState(
    const std::string& dir, const std::string& latest_filename = kDefaultLatestFilename);

absl::Status WriteCheckpointState(
    const std::string& dir, const CheckpointState& state,
    const std::string& latest_filename = kDefaultLatestFilename);

// A byte-exact encoding of `state` for sending it to other ranks (any bytes
// in paths, every double bit for bit); not the state file's format.
std::string EncodeCheckpointState(const CheckpointState& state);
// Internal when `bytes` is not what EncodeCheckpointState made.
absl::StatusOr<CheckpointState> DecodeCheckpointState(absl::string_view bytes);

// Whether `path`, as a state file names it, lies inside `dir`: relative
// without ".." components, or absolute and lexically under `dir`. Entries
// that do not are ignored by every reader of the state file.
bool IsCheckpointPathInsideDir(const std::string& dir, const std::string& path);

// `path` resolved against `dir` when relative.
std::string ResolveCheckpointPath(const std::string& dir, const std::string& path);
// `prefix` relative to `dir` when it lies lexically inside it (with no ".."
// below `dir`; base/path.h RelativePathUnder), else unchanged.
std::string RelativeCheckpointPath(const std::string& dir, const std::string& prefix);

// True when `<prefix>.index` exists.
bool CheckpointExists(const std::string& prefix);
// True when `<prefix>.index` decodes and `<prefix>.h5` has the size it was
// committed with. Cheap (no tensor data is read); checksums catch the rest.
bool CheckpointIsIntact(const std::string& prefix);

// The newest committed and intact checkpoint prefix (absolute or as given
// by `dir`); NotFound when there is none. Reads every index in `dir`.
absl::StatusOr<std::string> LatestCheckpoint(
    const std::string& dir, const std::string& latest_filename = kDefaultLatestFilename);

// Every intact checkpoint prefix in `dir`, oldest first by index timestamp.
std::vector<std::string> ListCommittedCheckpoints(const std::string& dir);
// The same, each with the commit time its index records.
std::vector<std::pair<double, std::string>> ListCommittedCheckpointsWithTimes(
    const std::string& dir);

// The smallest number >= `at_least` that no `<name>-<N>` checkpoint in `dir`
// has (committed or not, so that a new save never reuses the name of one
// that exists, even a damaged one).
absl::StatusOr<int64_t> NextCheckpointNumber(const std::string& dir,
                                             absl::string_view name, int64_t at_least);

// Removes both files of a checkpoint, index first (so it stops existing
// before its data goes).
absl::Status DeleteCheckpoint(const std::string& prefix);

// Removes leftovers of crashed saves in `dir`: `*.h5.partial-*` files and
// `*.tmp-*` temporaries, and data files whose index is missing. Returns how
// many files were removed.
absl::StatusOr<int> SweepStaleTemporaries(const std::string& dir);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_STATE_CHECKPOINT_STATE_H_
