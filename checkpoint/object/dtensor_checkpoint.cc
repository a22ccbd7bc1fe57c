// DTensorCheckpoint (dtensor_checkpoint.h): creation, Save and Write, Restore.
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/object_graph.h"
#include "meshckpt/checkpoint/object/restore_session.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"

namespace meshckpt {
namespace {

constexpr char kSaveCounter[] = "save_counter";

// Rank 0: records `prefix` as the newest checkpoint in the state file of its
// directory, which keeps listing what it listed that is still there. Deletes
// nothing: only CheckpointManager and the Saver apply a max_to_keep.
absl::Status RecordInStateFile(const std::string& prefix) {
  const StateFileLocation where{StateFileDirectory(prefix)};
  // A missing or broken state file is replaced.
  const absl::StatusOr<CheckpointState> old = ReadCheckpointState(where.dir);
  RetentionList keep_all(RetentionPolicy{/*max_to_keep=*/std::nullopt},
                         old.ok() ? old->last_preserved_timestamp : 0,
                         old.ok() ? RetainedFromState(where.dir, *old)
                                  : std::vector<RetainedCheckpoint>());
  const RetainedCheckpoint saved{prefix,
                                 absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())};
  const std::vector<std::string> doomed = keep_all.Add(saved.prefix, saved.timestamp);
  return RecordSave(where, keep_all, saved, doomed);
}

}  // namespace

DTensorCheckpoint::DTensorCheckpoint(Communicator* comm, Mesh mesh, IoOptions options)
    : comm_(comm),
      mesh_(std::move(mesh)),
      graph_root_(this),
      options_(std::move(options)),
      save_counter_(TrackedValue::Create(int64_t{0})) {}

absl::StatusOr<std::unique_ptr<DTensorCheckpoint>> DTensorCheckpoint::Create(
    Communicator* comm, Mesh mesh, Children children, Trackable* root,
    IoOptions options) {
  if (comm == nullptr) return absl::InvalidArgumentError("communicator is null");
  if (mesh.num_ranks() != comm->size() || mesh.rank() != comm->rank()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh ", mesh.ToShortString(), " spans ", mesh.num_ranks(),
                     " ranks seen from rank ", mesh.rank(), ", but this job has ",
                     comm->size(), " ranks and this is rank ", comm->rank()));
  }
  std::unique_ptr<DTensorCheckpoint> ckpt(
      new DTensorCheckpoint(comm, std::move(mesh), std::move(options)));
  if (root == nullptr) {
    for (auto& [name, child] : children) {
      if (name == kSaveCounter) {
        return absl::InvalidArgumentError(
            "'save_counter' is reserved for the checkpoint");
      }
      MESHCKPT_RETURN_IF_ERROR(ckpt->TrackChild(name, child));
    }
    MESHCKPT_RETURN_IF_ERROR(ckpt->TrackChild(kSaveCounter, ckpt->save_counter_.get()));
    return ckpt;
  }
  ckpt->graph_root_ = root;
  if (root->FindChild(kSaveCounter) != nullptr) {
    return absl::InvalidArgumentError(
        "the root already has a child named 'save_counter'");
  }
  for (auto& [name, child] : children) {
    MESHCKPT_RETURN_IF_ERROR(Trackable::ValidateChildName(name));
    if (name == kSaveCounter) {
      return absl::InvalidArgumentError("'save_counter' is reserved for the checkpoint");
    }
    if (child == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("child '", name, "' is null, not a trackable object"));
    }
    if (Trackable* existing = root->FindChild(name)) {
      if (existing == child) continue;
      return absl::InvalidArgumentError(
          absl::StrCat("child '", name,
                       "' is given both by the root and as a keyword, as "
                       "different objects"));
    }
    for (const auto& [n, c] : ckpt->attached_) {
      if (n == name) {
        return absl::InvalidArgumentError(
            absl::StrCat("a child named '", name, "' is given twice"));
      }
    }
    ckpt->attached_.emplace_back(name, child);
  }
  ckpt->attached_.emplace_back(kSaveCounter, ckpt->save_counter_.get());
  return ckpt;
}

void DTensorCheckpoint::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

ObjectGraph DTensorCheckpoint::ObjectGraph() const {
  return internal::ObjectGraphOf(internal::WalkObjectGraph(graph_root_, attached_));
}

void DTensorCheckpoint::Collect(std::vector<SaveTensor>* tensors,
                                CheckpointContents* contents) const {
  const std::vector<internal::GraphNode> nodes =
      internal::WalkObjectGraph(graph_root_, attached_);
  for (const internal::GraphNode& n : nodes) {
    const std::string key = internal::ValueKey(n.path);
    if (const auto* v = dynamic_cast<const DVariable*>(n.object)) {
      tensors->push_back(
          {key, n.path, v->dtype(), v->shape(), v->layout(), {}, v->ShardData()});
    } else if (const auto* t = dynamic_cast<const TrackedValue*>(n.object)) {
      const bool per_rank = t->scope() == TrackedValue::Scope::kPerRank;
      const void* data = std::visit(
          [](const auto& x) { return static_cast<const void*>(&x); }, t->value());
      tensors->push_back(
          {key,
           n.path,
           t->dtype(),
           per_rank ? std::vector<int64_t>{comm_->size()} : std::vector<int64_t>{},
           internal::ValueLayout(*comm_, per_rank),
           {data}});
    }
  }
  contents->mesh = mesh_;
  contents->object_graph = internal::ObjectGraphOf(nodes);
  contents->user_metadata = metadata_;
  contents->save_counter = save_counter();
  contents->step = step_;
}

absl::Status DTensorCheckpoint::WriteInternal(const std::string& prefix,
                                              const IoOptions& options) {
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());
  std::vector<SaveTensor> tensors;
  CheckpointContents contents;
  Collect(&tensors, &contents);
  return SaveTensors(*comm_, prefix, tensors, contents, options);
}

absl::Status DTensorCheckpoint::StartAsyncWrite(const std::string& prefix,
                                                const IoOptions* options,
                                                AsyncSaver::AfterCommit after_commit,
                                                OnAsyncFinished on_finished) {
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());
  if (async_ == nullptr) async_ = std::make_unique<AsyncSaver>(comm_, async_options_);
  std::vector<SaveTensor> tensors;
  CheckpointContents contents;
  Collect(&tensors, &contents);
  MESHCKPT_RETURN_IF_ERROR(async_->Start(
      prefix, tensors, contents, options ? *options : options_, std::move(after_commit)));
  on_async_finished_ = std::move(on_finished);
  return absl::OkStatus();
}

absl::Status DTensorCheckpoint::WaitUntilFinished() {
  if (!save_in_flight()) return absl::OkStatus();
  absl::Status s = async_->Wait();
  OnAsyncFinished done = std::move(on_async_finished_);
  on_async_finished_ = nullptr;
  if (done) done(s, async_->last_stats().committed);
  return s;
}

void DTensorCheckpoint::SetAsyncOptions(AsyncSaveOptions options) {
  async_options_ = options;
  if (async_ != nullptr) async_->SetOptions(options);
}

AsyncSaveStats DTensorCheckpoint::last_async_stats() const {
  return async_ != nullptr ? async_->last_stats() : AsyncSaveStats();
}

absl::StatusOr<std::string> DTensorCheckpoint::Write(const std::string& file_prefix,
                                                     const IoOptions* options) {
  MESHCKPT_RETURN_IF_ERROR(WriteInternal(file_prefix, options ? *options : options_));
  return file_prefix;
}

absl::StatusOr<std::string> DTensorCheckpoint::WriteAsync(const std::string& file_prefix,
                                                          const IoOptions* options) {
  MESHCKPT_RETURN_IF_ERROR(StartAsyncWrite(file_prefix, options, nullptr, nullptr));
  return file_prefix;
}

absl::StatusOr<std::string> DTensorCheckpoint::NextSavePath(
    const std::string& file_prefix) {
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());
  const int64_t previous = save_counter();
  const std::string dir = StateFileDirectory(file_prefix);
  // Rank 0 locks the directory and picks a number no existing checkpoint
  // has; everyone takes its answer.
  absl::StatusOr<int64_t> number = int64_t{0};
  if (comm_->rank() == 0) {
    absl::Status locked = locks_.Hold(dir, DirectoryLockPolicy::kIfSupported);
    number = locked.ok() ? NextCheckpointNumber(dir, Basename(file_prefix), previous + 1)
                         : locked;
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(number.status()));
  return absl::StrCat(file_prefix, "-", BroadcastValue(*comm_, *number, 0));
}

absl::StatusOr<std::string> DTensorCheckpoint::Save(const std::string& file_prefix,
                                                    const IoOptions* options) {
  MESHCKPT_ASSIGN_OR_RETURN(const std::string path, NextSavePath(file_prefix));
  const int64_t previous = save_counter();
  (void)save_counter_->set(previous + 1);
  if (absl::Status s = WriteInternal(path, options ? *options : options_); !s.ok()) {
    (void)save_counter_->set(previous);
    return s;
  }
  absl::Status local;
  if (comm_->rank() == 0) local = RecordInStateFile(path);
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  return path;
}

absl::StatusOr<std::string> DTensorCheckpoint::SaveAsync(const std::string& file_prefix,
                                                         const IoOptions* options) {
  MESHCKPT_ASSIGN_OR_RETURN(const std::string path, NextSavePath(file_prefix));
  const int64_t previous = save_counter();
  (void)save_counter_->set(previous + 1);
  auto record = [path](Communicator& comm) {
    return comm.rank() == 0 ? RecordInStateFile(path) : absl::OkStatus();
  };
  // A save that never committed gives its number back, as Save does.
  auto on_finished = [this, previous](const absl::Status&, bool committed) {
    if (!committed && save_counter() == previous + 1) (void)save_counter_->set(previous);
  };
  if (absl::Status s = StartAsyncWrite(path, options, record, on_finished); !s.ok()) {
    (void)save_counter_->set(previous);
    return s;
  }
  return path;
}

absl::StatusOr<LoadStatus> DTensorCheckpoint::Restore(const std::string& save_path,
                                                      const IoOptions* options) {
  MESHCKPT_RETURN_IF_ERROR(WaitUntilFinished());
  const IoOptions& io = options ? *options : options_;
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> checkpoint,
                            CheckpointHandle::Open(*comm_, save_path, io));
  auto session = std::make_shared<internal::RestoreSession>(
      comm_, std::move(checkpoint), io, graph_root_, attached_, warning_sink_);
  if (absl::Status s = session->Restore(graph_root_, 0); !s.ok()) {
    session->Abandon();
    return s;
  }
  return LoadStatus(std::move(session));
}

}  // namespace meshckpt
