// checkpoint/object/ owns the object API: Trackable, DVariable,
// TrackedValue, the object graph, LoadStatus, deferred restores
// (RestoreSession) and DTensorCheckpoint. It may use checkpoint/engine/,
// checkpoint/state/, io/, comm/, layout/, mesh/ and base/.
//
// DTensorCheckpoint: object-based, mesh-aware checkpointing of a tree of
// Trackables, after tf.experimental.dtensor.DTensorCheckpoint.
//
// The checkpoint object is the root of the tree: its children are the
// objects given at construction (and a `save_counter`). All calls are
// collective over the communicator; errors are the same on every rank.
//
//   Save("/ckpt/run/ckpt")  -> "/ckpt/run/ckpt-3": numbers with save_counter
//                              (itself saved), then updates the
//                              `/ckpt/run/checkpoint` state file.
//   Write("/ckpt/x")        -> "/ckpt/x": exactly that prefix, no numbering,
//                              no state file. Read(path) is its partner.
//   Restore(path)           -> LoadStatus. Each variable is read in its own
//                              current layout, whatever mesh saved it.
//   SaveAsync, WriteAsync   -> as Save and Write, but return once every
//                              rank's values are staged; the checkpoint is
//                              written and committed in the background
//                              (checkpoint/engine/async_save.h).
//                              WaitUntilFinished() waits for it.
//
// At most one async save is in flight. Every collective call (Save, Write,
// their async forms, Restore, WaitUntilFinished) first waits for it, and
// when it failed returns its error (the same on every rank) instead of
// doing its own work. The destructor waits for it too.
//
// Example (4 ranks save, any rank count restores):
//   auto comm = *MpiCommunicator::World();
//   Mesh mesh = *Mesh::Create({{"batch", 2}, {"model", 2}}, comm->rank(), comm->size());
//   Module model;
//   DVariable* w = *model.AddVariable("kernel", DType::kFloat32, {512, 512},
//                                     *Layout::Create({"unsharded", "model"}, mesh));
//   auto ckpt = *DTensorCheckpoint::Create(comm.get(), mesh, {{"model", &model}});
//   absl::StatusOr<std::string> path = ckpt->Save("/ckpt/run/ckpt");
//   ...
//   absl::StatusOr<LoadStatus> status = ckpt->Restore(*path);
//
// The communicator and every tracked object must outlive the checkpoint
// object and any deferred restoration it leaves behind.
#ifndef MESHCKPT_CHECKPOINT_OBJECT_DTENSOR_CHECKPOINT_H_
#define MESHCKPT_CHECKPOINT_OBJECT_DTENSOR_CHECKPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/checkpoint/engine/async_save.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/load_status.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/io/fs/directory_lock.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

class DTensorCheckpoint : public Trackable {
 public:
  using Children = std::vector<std::pair<std::string, Trackable*>>;

  // `root`, when given, is the root of the saved graph (like
  // tf.train.Checkpoint(root=...)): its children are saved, values for
  // children it does not have yet are deferred onto it, and `children` and
  // the save counter are attached to it without becoming its own. Errors
  // (InvalidArgument): null child, bad or duplicate name, a child named like
  // one of root's but a different object, `save_counter` taken, a mesh whose
  // rank count differs from the communicator's.
  static absl::StatusOr<std::unique_ptr<DTensorCheckpoint>> Create(
      Communicator* comm, Mesh mesh, Children children, Trackable* root = nullptr,
      IoOptions options = {});

  // Each call takes the options given at Create unless `options` is set.
  // Save writes `<file_prefix>-<N>`, N = save_counter + 1, or the next number
  // after it that no `<file_prefix>-<M>` already has, and records it in the directory's
  // state file; rank 0 locks the directory at the first Save into it and
  // keeps the lock for this object's lifetime (FailedPrecondition when
  // another job holds it; io/fs/directory_lock.h).
  absl::StatusOr<std::string> Save(const std::string& file_prefix,
                                   const IoOptions* options = nullptr);
  absl::StatusOr<std::string> Write(const std::string& file_prefix,
                                    const IoOptions* options = nullptr);
  // NotFound when there is no committed checkpoint at `save_path`. Opens it
  // once (checkpoint/engine/checkpoint_handle.h): values deferred to objects
  // tracked later are read from the same index and data file, which stay
  // open while any is pending, even if a newer save replaces the checkpoint.
  absl::StatusOr<LoadStatus> Restore(const std::string& save_path,
                                     const IoOptions* options = nullptr);
  absl::StatusOr<LoadStatus> Read(const std::string& save_path,
                                  const IoOptions* options = nullptr) {
    return Restore(save_path, options);
  }

  // Save and Write, asynchronously: they return the prefix the checkpoint
  // will have once committed, as soon as the values of this call are staged
  // (the variables may change from then on). Errors of the background part
  // come back from the next collective call. InvalidArgument unless the
  // transfer mode is kDirect; FailedPrecondition unless MPI provides
  // MPI_THREAD_MULTIPLE.
  absl::StatusOr<std::string> SaveAsync(const std::string& file_prefix,
                                        const IoOptions* options = nullptr);
  absl::StatusOr<std::string> WriteAsync(const std::string& file_prefix,
                                         const IoOptions* options = nullptr);
  // Collective. Waits until the async save in flight, if any, is committed
  // (or failed) and returns its status; OK when there is none.
  absl::Status WaitUntilFinished();
  // Whether an async save was started and not yet waited for.
  bool save_in_flight() const { return async_ != nullptr && async_->in_flight(); }
  // Staging memory for async saves; takes effect at the next one, keeping
  // what is allocated when it is within the budget.
  void SetAsyncOptions(AsyncSaveOptions options);
  // What the last async save that was waited for measured on this rank.
  AsyncSaveStats last_async_stats() const;

  // For CheckpointManager: WriteAsync with `after_commit` run on every rank
  // on the background thread once the checkpoint is committed, and
  // `on_finished` run on this thread when the save is waited for, with its
  // status and whether the checkpoint was committed.
  using OnAsyncFinished = std::function<void(const absl::Status&, bool committed)>;
  absl::Status StartAsyncWrite(const std::string& prefix, const IoOptions* options,
                               AsyncSaver::AfterCommit after_commit,
                               OnAsyncFinished on_finished);

  int64_t save_counter() const { return save_counter_->int64(); }
  // CheckpointManager numbers checkpoints itself and bumps this.
  TrackedValue& mutable_save_counter() { return *save_counter_; }
  const Mesh& mesh() const { return mesh_; }
  Communicator& comm() const { return *comm_; }
  const IoOptions& options() const { return options_; }

  // Metadata written into the index of later saves (e.g. the step).
  void SetMetadata(std::string key, std::string value);
  void EraseMetadata(const std::string& key) { metadata_.erase(key); }
  void SetStep(int64_t step) { step_ = step; }
  // Where unused-value reports go (default: stderr on rank 0).
  void SetWarningSink(std::function<void(const std::string&)> sink) {
    warning_sink_ = std::move(sink);
  }

  // The object graph as it would be saved now (node 0 is this object).
  ::meshckpt::ObjectGraph ObjectGraph() const;

 private:
  DTensorCheckpoint(Communicator* comm, Mesh mesh, IoOptions options);
  // The tensors and contents of a save of the tracked graph; `tensors`
  // point into the tracked objects.
  void Collect(std::vector<SaveTensor>* tensors, CheckpointContents* contents) const;
  absl::Status WriteInternal(const std::string& prefix, const IoOptions& options);
  // Save's numbering and directory lock; returns the prefix to write.
  absl::StatusOr<std::string> NextSavePath(const std::string& file_prefix);

  Communicator* comm_;
  Mesh mesh_;
  Trackable* graph_root_;  // `root`, or this checkpoint.
  std::vector<std::pair<std::string, Trackable*>> attached_;
  IoOptions options_;
  std::unique_ptr<TrackedValue> save_counter_;
  std::map<std::string, std::string> metadata_;
  int64_t step_ = 0;
  std::function<void(const std::string&)> warning_sink_;
  DirectoryLockSet locks_;  // Rank 0's, of the directories Save wrote into.
  AsyncSaveOptions async_options_;
  OnAsyncFinished on_async_finished_;  // Of the save in flight.
  // Last: destroyed first, so it waits for the save in flight while the
  // rest of the object is still whole.
  std::unique_ptr<AsyncSaver> async_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_DTENSOR_CHECKPOINT_H_
