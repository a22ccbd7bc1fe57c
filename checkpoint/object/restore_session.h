// RestoreSession: the state of one DTensorCheckpoint::Restore, shared by its
// LoadStatus and by every deferred value it left on live objects. Internal.
//
// Matching: the live root and checkpoint node 0 match; a live child and a
// checkpoint child match when their parents match and their names are
// equal. Leaves take the tensor of their VARIABLE_VALUE attribute. A
// checkpoint child without a live counterpart is left pending on the live
// parent and restored when a child of that name is tracked.
//
// The session holds the checkpoint it restores from open (CheckpointHandle):
// deferred values are read from the index and data file the restore opened,
// never from a checkpoint saved over the same path since. The data file is
// closed once no value of the session is pending.
//
// A session whose restore failed reports no unused values: after an error
// "never restored" would point the user at ExpectPartial instead of at the
// error (issue #15).
#ifndef MESHCKPT_CHECKPOINT_OBJECT_RESTORE_SESSION_H_
#define MESHCKPT_CHECKPOINT_OBJECT_RESTORE_SESSION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

class TrackedValue;

namespace internal {

// The layout a TrackedValue is stored with: a scalar replicated over a 1-D
// mesh of one device per rank, or (per rank) a vector split over it.
Layout ValueLayout(const Communicator& comm, bool per_rank);

class RestoreSession : public std::enable_shared_from_this<RestoreSession> {
 public:
  // `root` matches node 0; `attached` are children of the root that the
  // root object itself does not track.
  RestoreSession(Communicator* comm, std::unique_ptr<CheckpointHandle> checkpoint,
                 IoOptions options, Trackable* root,
                 std::vector<std::pair<std::string, Trackable*>> attached,
                 std::function<void(const std::string&)> warning_sink);
  ~RestoreSession();

  // Matches `object` with checkpoint node `node`, restores every value in
  // the matched subtree and leaves the rest pending. Collective. After an
  // error the session reports no unused values.
  absl::Status Restore(Trackable* object, int node);
  // After a failed top-level restore: drops the values this session left
  // pending on live objects, so that objects tracked later are never filled
  // from a checkpoint whose restore failed (and the data file closes).
  void Abandon();
  // Called when a child left pending by this session is tracked.
  absl::Status RestoreDeferred(Trackable* object, int node) {
    --pending_;
    return Restore(object, node);
  }

  absl::Status AssertConsumed() const;
  absl::Status AssertExistingObjectsMatched() const;
  absl::Status AssertNontrivialMatch() const;
  absl::Status AssertSomeValueRestored() const;
  void ExpectPartial() { expect_partial_ = true; }
  std::vector<std::string> UnusedKeys() const;

 private:
  struct Leaf {
    Trackable* object;
    std::string key;
  };
  void Match(Trackable* object, int node, std::vector<Leaf>* leaves);
  absl::Status RestoreLeaves(const std::vector<Leaf>& leaves);

  const CheckpointIndex& index() const { return checkpoint_->index(); }
  const std::string& prefix() const { return checkpoint_->prefix(); }

  Communicator* comm_;
  std::unique_ptr<CheckpointHandle> checkpoint_;
  int pending_ = 0;  // Entries this session left in Trackable::pending_.
  IoOptions options_;
  Trackable* root_;
  std::vector<std::pair<std::string, Trackable*>> attached_;
  std::function<void(const std::string&)> warning_sink_;
  std::vector<std::string> node_paths_;
  std::vector<bool> node_matched_;
  absl::flat_hash_set<const Trackable*> matched_;
  absl::flat_hash_set<std::string> consumed_;
  bool expect_partial_ = false;
  bool failed_ = false;  // A restore of this session returned an error.
};

}  // namespace internal
}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_RESTORE_SESSION_H_
