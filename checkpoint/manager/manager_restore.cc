// CheckpointManager::RestoreOrInitialize (checkpoint_manager.h): restore the
// newest checkpoint, check the match the caller asked for, and fall back
// past damaged checkpoints.
//
// Everything here is decided alike on every rank: Restore returns the same
// status everywhere (Communicator::Agree), the match assertions look at the
// same object graphs, and the fallback candidates are rank 0's list,
// broadcast. So every rank restores the same checkpoint or returns the
// same error.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/manager/manager_internal.h"
#include "meshckpt/checkpoint/object/restore_session.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"

namespace meshckpt {
namespace {

std::string DescribeSkipped(const std::vector<SkippedCheckpoint>& skipped) {
  return absl::StrJoin(skipped, "; ", [](std::string* out, const SkippedCheckpoint& s) {
    absl::StrAppend(out, "'", s.prefix, "': ", s.status.message());
  });
}

}  // namespace

absl::StatusOr<LoadStatus> CheckpointManager::RestoreAndMatch(const std::string& prefix,
                                                              RestoreMatch match) {
  MESHCKPT_ASSIGN_OR_RETURN(
      LoadStatus status,
      checkpoint_->Restore(prefix, options_.io ? &*options_.io : nullptr));
  if (match == RestoreMatch::kPartial) status.ExpectPartial();
  // A checkpoint of another model can still match containers by name
  // (AssertNontrivialMatch passes); what counts is that a value came in.
  absl::Status matched = status.AssertSomeValueRestored();
  if (!matched.ok()) {
    matched = absl::FailedPreconditionError(
        absl::StrCat(matched.message(), " (a checkpoint of a different model?)"));
  } else if (match == RestoreMatch::kAllMatched) {
    matched = status.AssertConsumed();
  } else if (match == RestoreMatch::kExistingObjectsMatched) {
    matched = status.AssertExistingObjectsMatched();
  }
  if (!matched.ok()) {
    // The error says what did not match; a "never restored" warning on top
    // would only point at ExpectPartial. Objects tracked later must not be
    // filled from a checkpoint we rejected.
    status.ExpectPartial();
    status.session_->Abandon();
    return matched;
  }
  return status;
}

absl::StatusOr<std::vector<std::string>> CheckpointManager::FallbackCandidates() {
  Communicator& comm = checkpoint_->comm();
  std::vector<RetainedCheckpoint> found;
  if (comm.rank() == 0) {
    // Oldest first by commit time; intact by size (checksums are checked
    // when restoring).
    for (auto& [t, prefix] : ListCommittedCheckpointsWithTimes(directory_)) {
      // Only this manager's own checkpoints (`<checkpoint_name>-<N>`).
      if (internal::IsManagedName(Basename(prefix), options_.checkpoint_name)) {
        found.push_back({std::move(prefix), t});
      }
    }
  }
  MESHCKPT_RETURN_IF_ERROR(BroadcastRetained(comm, &found, 0));
  std::vector<std::string> newest_first;
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    newest_first.push_back(it->prefix);
  }
  return newest_first;
}

absl::StatusOr<RestoreResult> CheckpointManager::RestoreOrInitialize(RestoreMatch match) {
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());  // latest_ may be its checkpoint.
  if (!latest_.has_value()) return RestoreResult{};
  const bool loud = checkpoint_->comm().rank() == 0;
  std::vector<SkippedCheckpoint> skipped;
  std::vector<std::string> candidates = {*latest_};
  bool listed = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const std::string prefix = candidates[i];
    absl::StatusOr<LoadStatus> status = RestoreAndMatch(prefix, match);
    if (status.ok()) {
      if (loud && !skipped.empty()) {
        std::fprintf(stderr,
                     "meshckpt: WARNING: restored '%s' instead of %zu newer damaged "
                     "checkpoint(s): %s\n",
                     prefix.c_str(), skipped.size(), DescribeSkipped(skipped).c_str());
      }
      status->skipped_ = std::move(skipped);
      if (options_.checkpoint_interval.has_value()) {
        // Rank 0's step, as Save reads it.
        Communicator& comm = checkpoint_->comm();
        last_checkpoint_step_ = BroadcastValue(
            comm, comm.rank() == 0 ? options_.step_counter->int64() : int64_t{0}, 0);
      }
      return RestoreResult{prefix, *std::move(status)};
    }
    if (!absl::IsDataLoss(status.status()) || !options_.fall_back_to_intact) {
      if (skipped.empty()) return status.status();
      return absl::Status(status.status().code(),
                          absl::StrCat(status.status().message(), " (after skipping ",
                                       DescribeSkipped(skipped), ")"));
    }
    // Damaged: skip it, loudly, and try the next older intact one. Its
    // restore may have written some values; the next restore writes them
    // all again.
    if (loud) {
      std::fprintf(stderr,
                   "meshckpt: WARNING: checkpoint '%s' is damaged and is skipped: %s\n"
                   "meshckpt: WARNING: falling back to the newest older intact "
                   "checkpoint in '%s'\n",
                   prefix.c_str(), std::string(status.status().message()).c_str(),
                   directory_.c_str());
    }
    skipped.push_back({prefix, status.status()});
    if (!listed) {
      listed = true;
      MESHCKPT_ASSIGN_OR_RETURN(std::vector<std::string> older, FallbackCandidates());
      for (std::string& c : older) {
        const std::string name = NormalizePath(c);
        bool tried = false;
        for (const std::string& t : candidates) tried = tried || NormalizePath(t) == name;
        if (!tried) candidates.push_back(std::move(c));
      }
    }
  }
  return absl::DataLossError(absl::StrCat(
      "no checkpoint in '", directory_,
      "' could be restored; skipped as damaged: ", DescribeSkipped(skipped)));
}

}  // namespace meshckpt
