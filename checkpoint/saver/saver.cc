// Saver (saver.h): creation and Save; the retention and state file it
// applies are checkpoint/state/retention.h's. Restore is in
// saver_restore.cc, ImportStructure in saver_structure.cc.
//
// Every decision that shapes later collectives (which checkpoints leave the
// list, which are preserved) is computed identically on every rank from
// values rank 0 broadcast (its clock, its view of the file system); rank 0
// alone touches the directory and tells the others how it went (Agree).
// Not thread-safe.
//
//   auto saver = *Saver::Create(comm, std::vector<DVariable*>{w, b});
//   std::string p = *saver->Save("/ckpt/run/model", 1000);  // ".../model-1000"
#include "meshckpt/checkpoint/saver/saver.h"

#include <sys/stat.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/base/utf8.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/saver/saver_internal.h"
#include "meshckpt/checkpoint/state/retention.h"

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

// Rank 0's clock for everyone.
double RootClock(Communicator& comm, const std::function<double()>& clock) {
  return BroadcastValue(comm, comm.rank() == 0 ? clock() : 0.0, 0);
}

// A '/'-separated HDF5 path of non-empty names other than "." and "..".
absl::Status ValidateVariableName(const std::string& name) {
  bool ok = !name.empty() && name.find('\0') == std::string::npos && IsValidUtf8(name);
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("Saver: variable name '", absl::CHexEscape(name),
                   "' is not a valid dataset "
                   "path (UTF-8, '/'-separated names, none empty, '.' or '..')"));
}

absl::Status ValidateOptions(const SaverOptions& o) {
  if (o.max_to_keep < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saver: max_to_keep must be >= 0, got ", o.max_to_keep));
  }
  if (std::isnan(o.keep_checkpoint_every_n_hours) ||
      o.keep_checkpoint_every_n_hours <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saver: keep_checkpoint_every_n_hours must be > 0, got ",
                     o.keep_checkpoint_every_n_hours));
  }
  const std::string& f = o.latest_filename;
  if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
      f.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saver: latest_filename '", f, "' must be a plain file name"));
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
        return absl::InvalidArgumentError(
            absl::StrCat("Saver: variable name '", name.substr(0, slash),
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

}  // namespace

absl::StatusOr<std::unique_ptr<Saver>> Saver::Create(
    Communicator* comm, std::map<std::string, DVariable*> var_list,
    SaverOptions options) {
  if (comm == nullptr) return absl::InvalidArgumentError("Saver: communicator is null");
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(ValidateVarList(*comm, var_list, options)));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeOnArguments(
      *comm, Describe(var_list),
      "Saver: the variable lists (names, dtypes, shapes, layouts)"));
  if (!options.clock) options.clock = RealClock;
  // The first preservation period starts now.
  const double created = RootClock(*comm, options.clock);
  return std::unique_ptr<Saver>(
      new Saver(comm, std::move(var_list), std::move(options), created));
}

absl::StatusOr<std::unique_ptr<Saver>> Saver::Create(Communicator* comm,
                                                     std::vector<DVariable*> var_list,
                                                     SaverOptions options) {
  if (comm == nullptr) return absl::InvalidArgumentError("Saver: communicator is null");
  std::map<std::string, DVariable*> by_name;
  absl::Status local;
  for (size_t i = 0; i < var_list.size() && local.ok(); ++i) {
    DVariable* v = var_list[i];
    if (v == nullptr) {
      local = absl::InvalidArgumentError(
          absl::StrCat("Saver: variable ", i, " of the list is null"));
    } else if (!by_name.emplace(v->name(), v).second) {
      local = absl::InvalidArgumentError(
          absl::StrCat("Saver: at least two variables have the name '", v->name(), "'"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(local));
  return Create(comm, std::move(by_name), std::move(options));
}

double Saver::Now() { return RootClock(*comm_, options_.clock); }

void Saver::SetLastCheckpointsWithTime(
    std::vector<std::pair<std::string, double>> paths_with_time) {
  std::vector<RetainedCheckpoint> listed;
  listed.reserve(paths_with_time.size());
  for (auto& [path, time] : paths_with_time) listed.push_back({std::move(path), time});
  retention_.set_listed(std::move(listed));
  paths_ = retention_.ListedPrefixes();
}

void Saver::RecoverLastCheckpoints(const std::vector<std::string>& paths) {
  // Rank 0 looks at the files; everyone takes its answer.
  std::vector<RetainedCheckpoint> kept;
  if (comm_->rank() == 0) {
    for (const std::string& p : paths) {
      struct stat st;
      if (::stat(IndexFilePath(p).c_str(), &st) != 0) continue;  // Not committed.
      kept.push_back({p, static_cast<double>(st.st_mtim.tv_sec) +
                             1e-9 * static_cast<double>(st.st_mtim.tv_nsec)});
    }
  }
  // Fails only on a damaged broadcast, alike on every rank: nothing recovered.
  if (!BroadcastRetained(*comm_, &kept, 0).ok()) kept.clear();
  retention_.set_listed(std::move(kept));
  paths_ = retention_.ListedPrefixes();
}

absl::Status Saver::SetCollection(const std::string& name,
                                  std::vector<std::string> values) {
  bool ok = !name.empty();
  for (char c : name) ok = ok && c >= 0x20 && c < 0x7f;
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saver: collection name '", absl::CEscape(name),
                     "' must be non-empty printable ASCII"));
  }
  collections_[name] = std::move(values);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Saver::Save(const std::string& save_path,
                                        std::optional<int64_t> global_step,
                                        bool write_state) {
  absl::Status local;
  if (save_path.empty() || save_path.back() == '/') {
    local = absl::InvalidArgumentError(
        absl::StrCat("Saver: save_path '", save_path,
                     "' must name a checkpoint prefix, not a directory"));
  } else if (!IsValidUtf8(save_path)) {
    // The index records the data file's name in a proto string field.
    local = absl::InvalidArgumentError(absl::StrCat(
        "Saver: save_path '", absl::CHexEscape(save_path), "' is not UTF-8"));
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  std::string path = save_path;
  if (global_step.has_value()) {
    char step[32];
    std::snprintf(step, sizeof(step),
                  options_.pad_step_number ? "%08" PRId64 : "%" PRId64, *global_step);
    path = absl::StrCat(save_path, "-", step);
  }
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeOnArguments(
      *comm_, absl::StrCat(path, "|", write_state), "Saver::Save arguments"));
  if (vars_.empty()) return std::string();  // allow_empty: nothing to save.
  if (comm_->rank() == 0)
    local = locks_.Hold(StateFileDirectory(path), options_.directory_lock);
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));

  std::vector<SaveTensor> tensors;
  tensors.reserve(vars_.size());
  for (const auto& [name, v] : vars_) {
    tensors.push_back(
        {name, "", v->dtype(), v->shape(), v->layout(), {}, v->ShardData()});
  }
  CheckpointContents contents;
  for (const auto& [name, values] : collections_) {
    contents.user_metadata[absl::StrCat(kCollectionKeyPrefix, name)] =
        EncodeCollection(values);
  }
  contents.step = global_step.value_or(0);
  MESHCKPT_RETURN_IF_ERROR(SaveTensors(*comm_, path, tensors, contents, options_.io));
  if (!write_state) return path;

  // Decided alike on every rank; rank 0 writes the state file, then deletes.
  const RetainedCheckpoint saved{path, Now()};
  const std::vector<std::string> doomed = retention_.Add(saved.prefix, saved.timestamp);
  paths_ = retention_.ListedPrefixes();
  if (comm_->rank() == 0) {
    local = RecordSave({StateFileDirectory(path), options_.latest_filename,
                        options_.save_relative_paths},
                       retention_, saved, doomed);
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  return path;
}

}  // namespace meshckpt
