// Retention and the state file after a save (retention.h): the list, the
// preservation rules, the state file's content, and write-then-delete.
#include "meshckpt/checkpoint/state/retention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/format/index_file.h"

namespace meshckpt {

RetentionList::RetentionList(RetentionPolicy policy, double preserved,
                             std::vector<RetainedCheckpoint> listed)
    : policy_(policy), preserved_(preserved), listed_(std::move(listed)) {}

bool RetentionList::Preserve(double timestamp) {
  const double every = policy_.keep_checkpoint_every_n_hours * 3600.0;
  if (!(every > 0)) return false;
  switch (policy_.rule) {
    case PreservationRule::kSinceLastPreserved:
      if (!(timestamp - every >= preserved_)) return false;
      preserved_ = timestamp;
      return true;
    case PreservationRule::kFixedPeriods:
      if (!(timestamp > preserved_ + every)) return false;
      preserved_ += every;
      return true;
  }
  return false;
}

std::vector<std::string> RetentionList::Add(const std::string& prefix, double timestamp,
                                            std::optional<double> metric) {
  if (policy_.max_to_keep == 0) return {};
  // A checkpoint saved again moves to the end instead of being listed twice.
  const std::string name = NormalizePath(prefix);
  listed_.erase(std::remove_if(listed_.begin(), listed_.end(),
                               [&](const RetainedCheckpoint& c) {
                                 return NormalizePath(c.prefix) == name;
                               }),
                listed_.end());
  listed_.push_back({prefix, timestamp, metric});
  std::vector<std::string> doomed;
  if (!policy_.max_to_keep.has_value()) return doomed;
  const size_t n = listed_.size();
  const size_t keep = static_cast<size_t>(*policy_.max_to_keep);
  if (n <= keep) return doomed;
  std::vector<bool> stays(n, false);
  for (size_t i = n - keep; i < n; ++i) stays[i] = true;  // The newest.
  for (size_t i : BestIndices()) stays[i] = true;
  // Oldest first, as TF: each leaving checkpoint is judged against the
  // bookkeeping the ones before it left.
  std::vector<RetainedCheckpoint> still;
  for (size_t i = 0; i < n; ++i) {
    if (stays[i]) {
      still.push_back(std::move(listed_[i]));
    } else if (!Preserve(listed_[i].timestamp)) {
      doomed.push_back(listed_[i].prefix);
    }
  }
  listed_ = std::move(still);
  return doomed;
}

std::vector<size_t> RetentionList::BestIndices() const {
  std::vector<size_t> with_metric;
  for (size_t i = 0; i < listed_.size(); ++i) {
    if (listed_[i].metric.has_value()) with_metric.push_back(i);
  }
  const bool max = policy_.best_mode == BestMode::kMax;
  // Better metric first; on a tie the newer (larger index) first.
  std::sort(with_metric.begin(), with_metric.end(), [&](size_t a, size_t b) {
    const double ma = *listed_[a].metric, mb = *listed_[b].metric;
    if (ma != mb) return max ? ma > mb : ma < mb;
    return a > b;
  });
  if (with_metric.size() > static_cast<size_t>(std::max(policy_.keep_best, 0))) {
    with_metric.resize(static_cast<size_t>(std::max(policy_.keep_best, 0)));
  }
  return with_metric;
}

std::vector<std::string> RetentionList::ListedPrefixes() const {
  std::vector<std::string> out;
  out.reserve(listed_.size());
  for (const RetainedCheckpoint& c : listed_) out.push_back(c.prefix);
  return out;
}

std::string StateFileDirectory(const std::string& prefix) { return Dirname(prefix); }

absl::StatusOr<std::string> StateFilePath(const std::string& dir,
                                          const std::string& prefix, bool relative) {
  MESHCKPT_ASSIGN_OR_RETURN(std::string abs, MakeAbsolute(prefix));
  if (!relative) return abs;
  MESHCKPT_ASSIGN_OR_RETURN(const std::string abs_dir, MakeAbsolute(dir));
  return RelativeCheckpointPath(abs_dir, abs);
}

absl::StatusOr<CheckpointState> StateAfterSave(const StateFileLocation& where,
                                               const RetentionList& list,
                                               const RetainedCheckpoint& latest) {
  CheckpointState state;
  MESHCKPT_ASSIGN_OR_RETURN(
      state.model_checkpoint_path,
      StateFilePath(where.dir, latest.prefix, where.relative_paths));
  for (const RetainedCheckpoint& c : list.listed()) {
    MESHCKPT_ASSIGN_OR_RETURN(state.all_model_checkpoint_paths.emplace_back(),
                              StateFilePath(where.dir, c.prefix, where.relative_paths));
    state.all_model_checkpoint_timestamps.push_back(c.timestamp);
  }
  if (state.all_model_checkpoint_paths.empty() ||
      state.all_model_checkpoint_paths.back() != state.model_checkpoint_path) {
    state.all_model_checkpoint_paths.push_back(state.model_checkpoint_path);
    state.all_model_checkpoint_timestamps.push_back(latest.timestamp);
  }
  if (list.policy().rule == PreservationRule::kSinceLastPreserved) {
    state.last_preserved_timestamp = list.preserved();
  }
  return state;
}

namespace {

absl::Status WriteThenDelete(const StateFileLocation& where, const RetentionList& list,
                             const RetainedCheckpoint& latest,
                             const std::vector<std::string>& doomed) {
  absl::StatusOr<CheckpointState> state = StateAfterSave(where, list, latest);
  absl::Status written =
      state.ok() ? WriteCheckpointState(where.dir, *state, where.latest_filename)
                 : state.status();
  MESHCKPT_FAULT_POINT("after_state_file", 0);
  MESHCKPT_RETURN_IF_ERROR(written);
  // Only now, with the state file no longer naming them, delete.
  std::string latest_abs;
  if (!doomed.empty()) {
    MESHCKPT_ASSIGN_OR_RETURN(latest_abs, MakeAbsolute(latest.prefix));
  }
  for (const std::string& prefix : doomed) {
    MESHCKPT_FAULT_POINT("during_sweep", 0);
    MESHCKPT_ASSIGN_OR_RETURN(const std::string abs, MakeAbsolute(prefix));
    if (abs == latest_abs) continue;  // The new checkpoint's files, spelled otherwise.
    MESHCKPT_RETURN_IF_ERROR(DeleteCheckpoint(prefix));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RecordSave(const StateFileLocation& where, const RetentionList& list,
                        const RetainedCheckpoint& latest,
                        const std::vector<std::string>& doomed) {
  absl::Status s = WriteThenDelete(where, list, latest, doomed);
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("saved '", latest.prefix, "', then: ", s.message()));
}

std::vector<RetainedCheckpoint> RetainedFromState(const std::string& dir,
                                                  const CheckpointState& state) {
  std::vector<RetainedCheckpoint> out;
  absl::flat_hash_set<std::string> seen;
  const std::vector<std::string>& paths = state.all_model_checkpoint_paths;
  const std::vector<double>& stamps = state.all_model_checkpoint_timestamps;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!IsCheckpointPathInsideDir(dir, paths[i])) continue;
    const std::string prefix = ResolveCheckpointPath(dir, paths[i]);
    if (!CheckpointExists(prefix) || !seen.insert(NormalizePath(prefix)).second) continue;
    out.push_back({prefix, i < stamps.size() ? stamps[i] : 0.0});
  }
  return out;
}

absl::StatusOr<std::optional<double>> ReadCheckpointMetric(const std::string& prefix) {
  const std::string path = IndexFilePath(prefix);
  MESHCKPT_ASSIGN_OR_RETURN(std::string bytes, ReadIndexFileBytes(path));
  MESHCKPT_ASSIGN_OR_RETURN(IndexRecord index, DecodeIndexFile(bytes, path));
  auto it = index.user_metadata.find(kMetricMetadataKey);
  if (it == index.user_metadata.end()) return std::optional<double>();
  double metric = 0;
  if (!absl::SimpleAtod(it->second, &metric) || !std::isfinite(metric)) {
    return absl::DataLossError(absl::StrCat("index '", path, "' records metric '",
                                            it->second, "', not a finite number"));
  }
  return std::optional<double>(metric);
}

absl::Status BroadcastRetained(Communicator& comm, std::vector<RetainedCheckpoint>* list,
                               int root) {
  std::string bytes, metrics;
  if (comm.rank() == root) {
    CheckpointState packed;
    for (const RetainedCheckpoint& c : *list) {
      packed.all_model_checkpoint_paths.push_back(c.prefix);
      packed.all_model_checkpoint_timestamps.push_back(c.timestamp);
      // One flag byte and the double's bytes per entry.
      const double m = c.metric.value_or(0.0);
      metrics.push_back(c.metric.has_value() ? 1 : 0);
      metrics.append(reinterpret_cast<const char*>(&m), sizeof(m));
    }
    bytes = EncodeCheckpointState(packed);
  }
  comm.Broadcast(&bytes, root);
  comm.Broadcast(&metrics, root);
  // Every rank decodes the same bytes, so every rank gets the same answer.
  constexpr size_t kMetricBytes = 1 + sizeof(double);
  absl::StatusOr<CheckpointState> packed = DecodeCheckpointState(bytes);
  if (!packed.ok() ||
      packed->all_model_checkpoint_paths.size() !=
          packed->all_model_checkpoint_timestamps.size() ||
      metrics.size() != packed->all_model_checkpoint_paths.size() * kMetricBytes) {
    return absl::InternalError("corrupt broadcast of a checkpoint list");
  }
  list->clear();
  for (size_t i = 0; i < packed->all_model_checkpoint_paths.size(); ++i) {
    std::optional<double> metric;
    if (metrics[i * kMetricBytes] != 0) {
      double m;
      std::memcpy(&m, metrics.data() + i * kMetricBytes + 1, sizeof(m));
      metric = m;
    }
    list->push_back({std::move(packed->all_model_checkpoint_paths[i]),
                     packed->all_model_checkpoint_timestamps[i], metric});
  }
  return absl::OkStatus();
}

}  // namespace meshckpt
