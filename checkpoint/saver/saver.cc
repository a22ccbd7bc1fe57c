// Saver (saver.h): creation, Save, the state file and retention.
// Restore is in saver_restore.cc, ImportStructure in saver_structure.cc.
//
// Every decision that shapes later collectives (which checkpoints leave the
// list, which are preserved) is computed identically on every rank from
// values rank 0 broadcast (its clock, its view of the file system); rank 0
// alone touches the directory and tells the others how it went (Agree).
// Not thread-safe.
//
//   auto saver = *Saver::Create(comm, std::vector<DVariable*>{w, b});
//   std::string p = *saver->Save("/ckpt/run/model", 1000);  // ".../model-1000"
#include "checkpoint/saver/saver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/path.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "checkpoint/saver/saver_internal.h"
#include "checkpoint/engine/shard_io.h"

namespace meshckpt {
namespace internal {

absl::Status AgreeOnArguments(Communicator& comm, const std::string& text,
                              absl::string_view what) {
  std::string root = comm.rank() == 0 ? text : std::string();
  comm.Broadcast(&root, 0);
  absl::Status local;
  if (root != text) {
    local = absl::InvalidArgumentError(absl::StrCat(
        what, " differ between ranks: rank ", comm.rank(), " does not match rank 0"));
  }
  return comm.Agree(local);
}

}  // namespace internal

namespace {

double RealClock() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

std::string DoubleToBytes(double d) {
  std::string s(sizeof(d), '\0');
  std::memcpy(s.data(), &d, sizeof(d));
  return s;
}
double BytesToDouble(const std::string& s) {
  double d = 0;
  if (s.size() == sizeof(d)) std::memcpy(&d, s.data(), sizeof(d));
  return d;
}

// A '/'-separated HDF5 path of non-empty names other than "." and "..".
absl::Status ValidateVariableName(const std::string& name) {
  bool ok = !name.empty() && name.find('\0') == std::string::npos &&
            IsValidUtf8(name);
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "Saver: variable name '", absl::CHexEscape(name), "' is not a valid dataset "
      "path (UTF-8, '/'-separated names, none empty, '.' or '..')"));
}

absl::Status ValidateOptions(const SaverOptions& o) {
  if (o.max_to_keep < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saver: max_to_keep must be >= 0, got ", o.max_to_keep));
  }
  if (std::isnan(o.keep_checkpoint_every_n_hours) || o.keep_checkpoint_every_n_hours <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Saver: keep_checkpoint_every_n_hours must be > 0, got ",
        o.keep_checkpoint_every_n_hours));
  }
  const std::string& f = o.latest_filename;
  if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
      f.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Saver: latest_filename '", f, "' must be a plain file name"));
  }
  return absl::OkStatus();
}

absl::Status ValidateVarList(const Communicator& comm,
                             const std::map<std::string, DVariable*>& vars,
                             const SaverOptions& options) {
  MESHCKPT_RETURN_IF_ERROR(ValidateOptions(options));
  if (vars.empty() && !options.allow_empty) {
    return absl::InvalidArgumentError(
        "Saver: no variables to save (set SaverOptions::allow_empty to allow it)");
  }
  for (const auto& [name, v] : vars) {
    MESHCKPT_RETURN_IF_ERROR(ValidateVariableName(name));
    if (v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("Saver: variable '", name, "' is null"));
    }
    const Mesh& mesh = v->layout().mesh();
    if (mesh.num_ranks() != comm.size() || mesh.rank() != comm.rank()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Saver: variable '", name, "' lives on a mesh of ", mesh.num_ranks(),
          " ranks seen from rank ", mesh.rank(), ", but this job has ", comm.size(),
          " ranks and this is rank ", comm.rank()));
    }
    // A dataset cannot also be a group holding another one.
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (vars.count(name.substr(0, slash))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Saver: variable name '", name.substr(0, slash),
            "' is also a group holding '", name, "'"));
      }
    }
  }
  return absl::OkStatus();
}

// What every rank must pass alike: names, dtypes, shapes, layouts.
std::string Describe(const std::map<std::string, DVariable*>& vars) {
  std::string text;
  for (const auto& [name, v] : vars) {
    absl::StrAppend(&text, name.size(), ":", name, "|");
    if (v == nullptr) continue;
    absl::StrAppend(&text, static_cast<int>(v->dtype()), "|",
                    absl::StrJoin(v->shape(), ","), "|",
                    absl::StrJoin(v->layout().sharding_specs(), ","), "|");
    for (const MeshDimension& d : v->layout().mesh().dims()) {
      absl::StrAppend(&text, d.name, "=", d.size, ",");
    }
    text += "\n";
  }
  return text;
}

// How `prefix` is written in the state file of `dir`.
absl::StatusOr<std::string> StatePath(const std::string& dir, const std::string& prefix,
                                      bool relative) {
  MESHCKPT_ASSIGN_OR_RETURN(std::string abs, MakeAbsolute(prefix));
  if (!relative) return abs;
  MESHCKPT_ASSIGN_OR_RETURN(std::string abs_dir, MakeAbsolute(dir));
  return RelativeCheckpointPath(abs_dir, abs);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Saver>> Saver::Create(
    Communicator* comm, std::map<std::string, DVariable*> var_list,
    SaverOptions options) {
  if (comm == nullptr) return absl::InvalidArgumentError("Saver: communicator is null");
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(ValidateVarList(*comm, var_list, options)));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeOnArguments(
      *comm, Describe(var_list), "Saver: the variable lists (names, dtypes, shapes, layouts)"));
  if (!options.clock) options.clock = RealClock;
  std::unique_ptr<Saver> saver(new Saver(comm, std::move(var_list), std::move(options)));
  saver->next_preserve_time_ =
      saver->Now() + saver->options_.keep_checkpoint_every_n_hours * 3600.0;
  return saver;
}

absl::StatusOr<std::unique_ptr<Saver>> Saver::Create(
    Communicator* comm, std::vector<DVariable*> var_list, SaverOptions options) {
  if (comm == nullptr) return absl::InvalidArgumentError("Saver: communicator is null");
  std::map<std::string, DVariable*> by_name;
  absl::Status local;
  for (size_t i = 0; i < var_list.size() && local.ok(); ++i) {
    DVariable* v = var_list[i];
    if (v == nullptr) {
      local = absl::InvalidArgumentError(
          absl::StrCat("Saver: variable ", i, " of the list is null"));
    } else if (!by_name.emplace(v->name(), v).second) {
      local = absl::InvalidArgumentError(absl::StrCat(
          "Saver: at least two variables have the name '", v->name(), "'"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(local));
  return Create(comm, std::move(by_name), std::move(options));
}

double Saver::Now() {  // Rank 0's clock for everyone.
  return BroadcastValue(*comm_, comm_->rank() == 0 ? options_.clock() : 0.0, 0);
}

void Saver::SyncPaths() {
  paths_.clear();
  for (const auto& [path, time] : last_) paths_.push_back(path);
}

void Saver::SetLastCheckpointsWithTime(
    std::vector<std::pair<std::string, double>> paths_with_time) {
  last_ = std::move(paths_with_time);
  SyncPaths();
}

void Saver::RecoverLastCheckpoints(const std::vector<std::string>& paths) {
  // Rank 0 looks at the files; everyone takes its answer.
  std::string found;
  if (comm_->rank() == 0) {
    std::vector<std::pair<std::string, double>> kept;
    for (const std::string& p : paths) {
      struct stat st;
      if (::stat(IndexFilePath(p).c_str(), &st) != 0) continue;  // Not committed.
      kept.emplace_back(p, static_cast<double>(st.st_mtim.tv_sec) +
                               1e-9 * static_cast<double>(st.st_mtim.tv_nsec));
    }
    for (const auto& [p, t] : kept) {
      absl::StrAppend(&found, p.size(), ":", p, DoubleToBytes(t));
    }
  }
  comm_->Broadcast(&found, 0);
  std::vector<std::pair<std::string, double>> recovered;
  absl::string_view rest = found;
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    size_t n = 0;
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(rest.substr(0, colon), &n) ||
        rest.size() < colon + 1 + n + sizeof(double)) {
      break;  // Cannot happen: rank 0 wrote it.
    }
    std::string p(rest.substr(colon + 1, n));
    const double t = BytesToDouble(std::string(rest.substr(colon + 1 + n, sizeof(double))));
    recovered.emplace_back(std::move(p), t);
    rest.remove_prefix(colon + 1 + n + sizeof(double));
  }
  SetLastCheckpointsWithTime(std::move(recovered));
}

absl::Status Saver::SetCollection(const std::string& name,
                                  std::vector<std::string> values) {
  bool ok = !name.empty();
  for (char c : name) ok = ok && c >= 0x20 && c < 0x7f;
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Saver: collection name '", absl::CEscape(name),
        "' must be non-empty printable ASCII"));
  }
  collections_[name] = std::move(values);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, double>> Saver::RecordLastCheckpoint(
    const std::string& path, double timestamp) {
  if (options_.max_to_keep == 0) return {};
  last_.erase(std::remove_if(last_.begin(), last_.end(),
                             [&](const auto& e) { return e.first == path; }),
              last_.end());
  last_.emplace_back(path, timestamp);
  std::vector<std::pair<std::string, double>> leaving;
  const size_t keep = static_cast<size_t>(options_.max_to_keep);
  if (last_.size() > keep) {
    const size_t n = last_.size() - keep;
    leaving.assign(last_.begin(), last_.begin() + n);
    last_.erase(last_.begin(), last_.begin() + n);
  }
  SyncPaths();
  return leaving;
}

absl::Status Saver::RecordAndSweep(
    const std::string& latest, double timestamp,
    const std::vector<std::pair<std::string, double>>& leaving) {
  // Preservation is decided on every rank alike (TF _MaybeDeleteOldCheckpoints).
  std::vector<std::string> doomed;
  for (const auto& [path, time] : leaving) {
    if (time > next_preserve_time_) {
      next_preserve_time_ += options_.keep_checkpoint_every_n_hours * 3600.0;
      continue;
    }
    doomed.push_back(path);
  }
  if (comm_->rank() != 0) return absl::OkStatus();

  const std::string dir = Dirname(latest);
  const bool rel = options_.save_relative_paths;
  CheckpointState state;
  MESHCKPT_ASSIGN_OR_RETURN(state.model_checkpoint_path, StatePath(dir, latest, rel));
  for (const auto& [path, time] : last_) {
    MESHCKPT_ASSIGN_OR_RETURN(state.all_model_checkpoint_paths.emplace_back(),
                              StatePath(dir, path, rel));
    state.all_model_checkpoint_timestamps.push_back(time);
  }
  // As TF: the latest is always listed last (with max_to_keep == 0 alone).
  if (state.all_model_checkpoint_paths.empty() ||
      state.all_model_checkpoint_paths.back() != state.model_checkpoint_path) {
    state.all_model_checkpoint_paths.push_back(state.model_checkpoint_path);
    state.all_model_checkpoint_timestamps.push_back(timestamp);
  }
  MESHCKPT_RETURN_IF_ERROR(WriteCheckpointState(dir, state, options_.latest_filename));
  // Only now, with the state file no longer naming them, delete.
  MESHCKPT_ASSIGN_OR_RETURN(const std::string latest_abs, MakeAbsolute(latest));
  for (const std::string& path : doomed) {
    MESHCKPT_ASSIGN_OR_RETURN(const std::string abs, MakeAbsolute(path));
    if (abs == latest_abs) continue;  // Same files, other spelling.
    MESHCKPT_RETURN_IF_ERROR(DeleteCheckpoint(path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Saver::Save(const std::string& save_path,
                                        std::optional<int64_t> global_step,
                                        bool write_state) {
  absl::Status local;
  if (save_path.empty() || save_path.back() == '/') {
    local = absl::InvalidArgumentError(absl::StrCat(
        "Saver: save_path '", save_path, "' must name a checkpoint prefix, not a directory"));
  } else if (!IsValidUtf8(save_path)) {
    // The index records the data file's name in a proto string field.
    local = absl::InvalidArgumentError(absl::StrCat(
        "Saver: save_path '", absl::CHexEscape(save_path), "' is not UTF-8"));
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  std::string path = save_path;
  if (global_step.has_value()) {
    char step[32];
    std::snprintf(step, sizeof(step), options_.pad_step_number ? "%08" PRId64 : "%" PRId64,
                  *global_step);
    path = absl::StrCat(save_path, "-", step);
  }
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeOnArguments(
      *comm_, absl::StrCat(path, "|", write_state), "Saver::Save arguments"));
  if (vars_.empty()) return std::string();  // allow_empty: nothing to save.
  if (comm_->rank() == 0) local = locks_.Hold(Dirname(path), options_.directory_lock);
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));

  std::vector<SaveTensor> tensors;
  tensors.reserve(vars_.size());
  for (const auto& [name, v] : vars_) {
    tensors.push_back({name, "", v->dtype(), v->shape(), v->layout(), {}, v->ShardData()});
  }
  SaveOptions save = options_.io.ToSaveOptions();
  for (const auto& [name, values] : collections_) {
    save.user_metadata[absl::StrCat(kCollectionKeyPrefix, name)] = EncodeCollection(values);
  }
  save.step = global_step.value_or(0);
  MESHCKPT_RETURN_IF_ERROR(SaveTensors(*comm_, path, tensors, save));
  if (!write_state) return path;

  const double timestamp = Now();
  const std::vector<std::pair<std::string, double>> leaving =
      RecordLastCheckpoint(path, timestamp);
  local = RecordAndSweep(path, timestamp, leaving);
  if (!local.ok()) {
    local = absl::Status(local.code(),
                         absl::StrCat("saved '", path, "', then: ", local.message()));
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  return path;
}

}  // namespace meshckpt
