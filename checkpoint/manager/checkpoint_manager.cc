// CheckpointManager (checkpoint_manager.h).
//
// Rank 0 does every file operation on the directory and tells the others
// what it found (Broadcast) or how it went (Agree); the retention decisions
// are computed identically on every rank from values rank 0 broadcast (its
// clock, its step counter), so checkpoints() is the same everywhere and no
// rank can wander off into a collective the others skip. Not thread-safe.
//
//   auto m = *CheckpointManager::Create(ckpt.get(), "/ckpt/run");
//   std::optional<std::string> p = *m->Save();   // "/ckpt/run/ckpt-1"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"
#include "meshckpt/checkpoint/manager/manager_internal.h"

namespace meshckpt {

bool internal::IsManagedName(absl::string_view name, const std::string& checkpoint_name) {
  if (!absl::ConsumePrefix(&name, checkpoint_name) || !absl::ConsumePrefix(&name, "-")) {
    return false;
  }
  return !name.empty() && std::all_of(name.begin(), name.end(), absl::ascii_isdigit);
}
namespace {

double RealClock() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

// mkdir -p for an absolute, normalized path.
absl::Status CreateDirectories(const std::string& dir) {
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    const std::string sub = dir.substr(0, pos);
    if (::mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::Status(errno == EACCES ? absl::StatusCode::kPermissionDenied
                                          : absl::StatusCode::kInternal,
                          absl::StrCat("cannot create checkpoint directory '", sub,
                                       "': ", std::strerror(errno)));
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint directory '", dir, "' is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFileName(absl::string_view what, const std::string& name) {
  if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || absl::StrContains(name, ".tmp-") ||
      absl::StrContains(name, ".partial-") || absl::EndsWith(name, ".h5") ||
      absl::EndsWith(name, ".index")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid ", what, " '", name,
        "': must be a plain file name, not starting with '.', without "
        "\".tmp-\" or \".partial-\" and not ending in \".h5\" or \".index\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const std::string& directory,
                             const CheckpointManagerOptions& o) {
  if (directory.empty()) {
    return absl::InvalidArgumentError("CheckpointManager needs a directory");
  }
  if (o.max_to_keep.has_value() && *o.max_to_keep <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_to_keep must be positive or nullopt (keep all), got ", *o.max_to_keep));
  }
  if (!std::isfinite(o.keep_checkpoint_every_n_hours) ||
      o.keep_checkpoint_every_n_hours < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep_checkpoint_every_n_hours must be >= 0, got ",
                     o.keep_checkpoint_every_n_hours));
  }
  if (o.async_save.has_value() && o.io.has_value() &&
      o.io->transfer_mode != TransferMode::kDirect) {
    return absl::InvalidArgumentError(
        "async_save needs io.transfer_mode kDirect: the MPI-IO modes write through HDF5, "
        "which parallel builds make without thread safety");
  }
  if (o.keep_best < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep_best must be >= 0, got ", o.keep_best));
  }
  if (o.checkpoint_interval.has_value()) {
    if (o.step_counter == nullptr) {
      return absl::InvalidArgumentError(
          "checkpoint_interval needs a step_counter to count steps with");
    }
    if (*o.checkpoint_interval < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint_interval must be >= 0, got ", *o.checkpoint_interval));
    }
  }
  if (o.step_counter != nullptr &&
      !std::holds_alternative<int64_t>(o.step_counter->value())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step_counter must hold an int64, not ", DTypeName(o.step_counter->dtype())));
  }
  MESHCKPT_RETURN_IF_ERROR(ValidateFileName("checkpoint_name", o.checkpoint_name));
  return ValidateFileName("latest_filename", o.latest_filename);
}

// What rank 0 found in the directory, to be broadcast (all but the lock).
struct Recovered {
  std::string directory;
  CheckpointState state;  // Absolute paths; model path = latest or "".
  // Parallel to state.all_model_checkpoint_paths (with keep_best only).
  std::vector<std::optional<double>> metrics;
  std::optional<DirectoryLock> lock;
};

// The metric recorded in `prefix`'s index, when keep_best needs it. An
// unreadable one counts as none: retention then keeps the checkpoint by
// recency only, which never deletes more than without keep_best.
std::optional<double> MetricIfNeeded(const std::string& prefix,
                                     const CheckpointManagerOptions& o) {
  if (o.keep_best <= 0) return std::nullopt;
  absl::StatusOr<std::optional<double>> m = ReadCheckpointMetric(prefix);
  return m.ok() ? *m : std::nullopt;
}

// Rank 0: create the directory, sweep, read what earlier runs left.
absl::StatusOr<Recovered> RecoverOnRank0(const std::string& directory,
                                         const CheckpointManagerOptions& o) {
  Recovered r;
  // Lexically, with rank 0's working directory.
  MESHCKPT_ASSIGN_OR_RETURN(r.directory, MakeAbsolute(directory));
  const std::string& dir = r.directory;
  MESHCKPT_RETURN_IF_ERROR(CreateDirectories(dir));
  // The lock comes before the sweep: what looks stale may be another live
  // job's save in progress.
  MESHCKPT_ASSIGN_OR_RETURN(DirectoryLock lock,
                            DirectoryLock::Acquire(dir, o.directory_lock));
  if (!lock.warning().empty())
    std::fprintf(stderr, "meshckpt: warning: %s\n", lock.warning().c_str());
  r.lock.emplace(std::move(lock));
  MESHCKPT_RETURN_IF_ERROR(SweepStaleTemporaries(dir).status());

  const double now = o.clock();
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir, o.latest_filename);
  // Every checkpoint directly in `dir` that the state file names, managed
  // or not (preserved, or older than the last preserved one).
  absl::flat_hash_set<std::string> named;
  if (state.ok()) {
    // As TF: a clock that went backwards clamps the bookkeeping; checkpoints
    // at or before the last preserved one were preserved or deleted already.
    double last_preserved = std::min(state->last_preserved_timestamp, now);
    r.state.last_preserved_timestamp = last_preserved;
    const auto& paths = state->all_model_checkpoint_paths;
    const auto& stamps = state->all_model_checkpoint_timestamps;
    for (size_t i = 0; i < paths.size(); ++i) {
      // Only checkpoints directly in the directory: a hostile state file
      // must not make this manager delete files elsewhere.
      const std::string prefix = ResolveCheckpointPath(dir, paths[i]);
      const std::string rel = RelativeCheckpointPath(dir, prefix);
      if (rel.empty() || rel == "." || rel == ".." ||
          rel.find('/') != std::string::npos || rel.find('\0') != std::string::npos) {
        continue;
      }
      const std::string abs = JoinPath(dir, rel);
      named.insert(abs);
      const double t = std::min(i < stamps.size() ? stamps[i] : last_preserved, now);
      if (!CheckpointExists(prefix)) continue;
      const auto& seen = r.state.all_model_checkpoint_paths;
      if (std::find(seen.begin(), seen.end(), abs) != seen.end()) continue;
      // A checkpoint kept for its metric may predate the last preserved one
      // and is still managed.
      const std::optional<double> metric = MetricIfNeeded(abs, o);
      if (!(t > last_preserved) && !metric.has_value()) continue;
      r.state.all_model_checkpoint_paths.push_back(abs);
      r.state.all_model_checkpoint_timestamps.push_back(t);
      r.metrics.push_back(metric);
    }
  } else if (absl::IsNotFound(state.status()) || absl::IsDataLoss(state.status())) {
    // TF sets the clock back a little so that a manager re-created at once
    // still sees its checkpoints as newer than the last preserved one.
    r.state.last_preserved_timestamp = now - 1;
  } else {
    return state.status();
  }
  // Committed checkpoints under our name that the state file does not name
  // become managed too, so retention keeps working and the next Save records
  // them: all of them when there is no usable state file; otherwise those
  // committed after everything it names (a job that died after the index
  // but before the state file, or whose state-file write failed). Commit
  // times come from the indexes on both sides, so the manager's clock option
  // does not enter the comparison.
  const std::vector<std::pair<double, std::string>> committed =
      ListCommittedCheckpointsWithTimes(dir);
  double newest_named = -std::numeric_limits<double>::infinity();
  for (const auto& [t, prefix] : committed) {
    if (named.contains(prefix)) newest_named = std::max(newest_named, t);
  }
  for (const auto& [t, prefix] : committed) {
    if ((!state.ok() || t > newest_named) && !named.contains(prefix) &&
        internal::IsManagedName(Basename(prefix), o.checkpoint_name)) {
      r.state.all_model_checkpoint_paths.push_back(prefix);
      r.state.all_model_checkpoint_timestamps.push_back(now);
      r.metrics.push_back(MetricIfNeeded(prefix, o));
    }
  }
  absl::StatusOr<std::string> latest = LatestCheckpoint(dir, o.latest_filename);
  if (latest.ok()) {
    r.state.model_checkpoint_path = *latest;
  } else if (!absl::IsNotFound(latest.status())) {
    return latest.status();
  }
  return r;
}

// Rank 0's value of the step counter, on every rank.
int64_t BroadcastStep(Communicator& comm, const TrackedValue& step_counter) {
  return BroadcastValue(comm, comm.rank() == 0 ? step_counter.int64() : int64_t{0}, 0);
}

}  // namespace

CheckpointManager::CheckpointManager(DTensorCheckpoint* checkpoint, std::string directory,
                                     CheckpointManagerOptions options)
    : checkpoint_(checkpoint),
      directory_(std::move(directory)),
      options_(std::move(options)),
      retention_(RetentionPolicy{options_.max_to_keep,
                                 options_.keep_checkpoint_every_n_hours,
                                 PreservationRule::kSinceLastPreserved,
                                 options_.keep_best, options_.best_mode}) {}

absl::StatusOr<std::unique_ptr<CheckpointManager>> CheckpointManager::Create(
    DTensorCheckpoint* checkpoint, std::string directory,
    CheckpointManagerOptions options) {
  if (checkpoint == nullptr) {
    return absl::InvalidArgumentError("CheckpointManager needs a checkpoint object");
  }
  Communicator& comm = checkpoint->comm();
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(ValidateOptions(directory, options)));
  if (!options.clock) options.clock = RealClock;

  std::string abs_dir, state_bytes;
  absl::Status local;
  std::optional<DirectoryLock> lock;
  std::vector<RetainedCheckpoint> managed;
  if (comm.rank() == 0) {
    absl::StatusOr<Recovered> r = RecoverOnRank0(directory, options);
    if (r.ok()) {
      abs_dir = r->directory;
      state_bytes = EncodeCheckpointState(r->state);
      lock = std::move(r->lock);
      for (size_t i = 0; i < r->state.all_model_checkpoint_paths.size(); ++i) {
        managed.push_back({r->state.all_model_checkpoint_paths[i],
                           r->state.all_model_checkpoint_timestamps[i], r->metrics[i]});
      }
    } else {
      local = absl::Status(r.status().code(),
                           absl::StrCat("creating CheckpointManager for '", directory,
                                        "': ", r.status().message()));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  comm.Broadcast(&abs_dir, 0);
  comm.Broadcast(&state_bytes, 0);
  absl::StatusOr<CheckpointState> decoded = DecodeCheckpointState(state_bytes);
  if (!decoded.ok()) {
    return absl::InternalError("CheckpointManager: corrupt broadcast of recovered state");
  }
  // The managed list with its metrics (the decoded state's paths too).
  MESHCKPT_RETURN_IF_ERROR(BroadcastRetained(comm, &managed, 0));
  const CheckpointState& state = *decoded;

  std::unique_ptr<CheckpointManager> m(
      new CheckpointManager(checkpoint, std::move(abs_dir), std::move(options)));
  if (!state.model_checkpoint_path.empty()) m->latest_ = state.model_checkpoint_path;
  m->retention_ = RetentionList(m->retention_.policy(), state.last_preserved_timestamp,
                                std::move(managed));
  m->checkpoints_ = m->retention_.ListedPrefixes();
  m->lock_ = std::move(lock);
  return m;
}

absl::StatusOr<std::optional<std::string>> CheckpointManager::Save(
    std::optional<int64_t> checkpoint_number, bool check_interval,
    std::optional<double> metric) {
  if (checkpoint_number.has_value() && *checkpoint_number < 0) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint_number must be >= 0, got ",
                                                   *checkpoint_number, " (directory '",
                                                   directory_, "')"));
  }
  // The save before, if async, must be in the books before numbering and
  // the interval look at them.
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());
  Communicator& comm = checkpoint_->comm();
  // Rank 0's metric, or none if rank 0 passed none: every rank takes the
  // same path below whatever the others passed.
  const bool has_metric = BroadcastValue(comm, metric.has_value(), 0);
  const double value =
      BroadcastValue(comm, comm.rank() == 0 && has_metric ? *metric : 0.0, 0);
  metric = has_metric ? std::optional<double>(value) : std::nullopt;
  if (metric.has_value()) {
    if (!std::isfinite(*metric)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric must be finite, got ", *metric, " (directory '", directory_, "')"));
    }
  }
  std::optional<int64_t> step;
  if (options_.step_counter != nullptr)
    step = BroadcastStep(comm, *options_.step_counter);
  if (options_.checkpoint_interval.has_value() && last_checkpoint_step_.has_value()) {
    if (*step == *last_checkpoint_step_) return std::nullopt;
    if (check_interval &&
        *step < *last_checkpoint_step_ + *options_.checkpoint_interval) {
      return std::nullopt;
    }
  }

  TrackedValue& counter = checkpoint_->mutable_save_counter();
  const int64_t previous = counter.int64();
  int64_t number = 0;
  if (checkpoint_number.has_value()) {
    number = *checkpoint_number;
  } else {
    // Never the name of a checkpoint already there (e.g. after resuming from
    // an older one): rank 0 looks, everyone takes its answer.
    absl::StatusOr<int64_t> next = int64_t{0};
    if (comm.rank() == 0) {
      next = NextCheckpointNumber(directory_, options_.checkpoint_name, previous + 1);
    }
    MESHCKPT_RETURN_IF_ERROR(comm.Agree(next.status()));
    number = BroadcastValue(comm, *next, 0);
  }
  (void)counter.set(previous + 1);  // Same type: cannot fail.
  const std::string prefix =
      JoinPath(directory_, absl::StrCat(options_.checkpoint_name, "-", number));
  if (step.has_value()) checkpoint_->SetStep(*step);
  const IoOptions* io = options_.io ? &*options_.io : nullptr;
  // The metric travels in the index, where a later manager finds it; only
  // for this save, which takes its contents at the call, async or not.
  if (metric.has_value()) {
    checkpoint_->SetMetadata(kMetricMetadataKey, absl::StrFormat("%.17g", *metric));
  }

  // The retention decision, alike on every rank, is taken now; the state
  // file and deletions follow the commit (rank 0), in the background when
  // the save is async.
  const double now = BroadcastValue(comm, comm.rank() == 0 ? options_.clock() : 0.0, 0);
  const RetainedCheckpoint saved{prefix, now, metric};
  RetentionList next = retention_;
  const std::vector<std::string> doomed =
      next.Add(saved.prefix, saved.timestamp, saved.metric);
  const StateFileLocation where{directory_, options_.latest_filename};
  auto record = [where, next, saved, doomed](Communicator& c) {
    MESHCKPT_FAULT_POINT("after_index", c.rank());
    return c.rank() == 0 ? RecordSave(where, next, saved, doomed) : absl::OkStatus();
  };
  // The manager's view moves on once the checkpoint exists, even when
  // recording it then failed.
  auto adopt = [this, next, prefix, step, previous](bool committed) {
    if (!committed) {
      (void)checkpoint_->mutable_save_counter().set(previous);
      return;
    }
    if (step.has_value()) last_checkpoint_step_ = step;
    retention_ = next;
    checkpoints_ = retention_.ListedPrefixes();
    latest_ = prefix;
  };

  if (options_.async_save.has_value()) {
    checkpoint_->SetAsyncOptions(*options_.async_save);
    absl::Status started = checkpoint_->StartAsyncWrite(
        prefix, io, record,
        [adopt](const absl::Status&, bool committed) { adopt(committed); });
    if (metric.has_value()) checkpoint_->EraseMetadata(kMetricMetadataKey);
    if (!started.ok()) {
      adopt(false);
      return started;
    }
    return std::optional<std::string>(prefix);
  }
  absl::StatusOr<std::string> written = checkpoint_->Write(prefix, io);
  if (metric.has_value()) checkpoint_->EraseMetadata(kMetricMetadataKey);
  adopt(written.ok());
  MESHCKPT_RETURN_IF_ERROR(written.status());
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(record(comm)));
  return std::optional<std::string>(prefix);
}

absl::Status CheckpointManager::WaitUntilFinished() {
  return checkpoint_->WaitUntilFinished();
}

CheckpointManager::~CheckpointManager() {
  // The finished save's callback points at this manager, so wait here; an
  // error nobody collected must not vanish with it.
  const absl::Status s = checkpoint_->WaitUntilFinished();
  if (!s.ok() && checkpoint_->comm().rank() == 0) {
    std::fprintf(stderr, "meshckpt: async save into '%s' failed: %s\n",
                 directory_.c_str(), s.ToString().c_str());
  }
}

}  // namespace meshckpt
