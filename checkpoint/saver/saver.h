// checkpoint/saver/ owns the TF1-style name-based Saver and
// ExportStructure/ImportStructure. It may use checkpoint/engine/,
// checkpoint/state/, the value types of checkpoint/object/ (DVariable, the
// object graph), io/, comm/ and below.
//
// Saver: name-based checkpoints of a flat list of variables, after
// tf.compat.v1.train.Saver, and ExportStructure/ImportStructure, after
// export_meta_graph / import_meta_graph.
//
// A Saver is built over `var_list`, a map from name to DVariable (or a list,
// named by DVariable::name()). The name is both the checkpoint key and the
// HDF5 dataset path ("dense/kernel" is a dataset `kernel` in group `dense`).
// Variables are always saved and restored in name order.
//
// Save(save_path, step) writes `<save_path>-<step>` ("model-1000", or with
// pad_step_number "model-00001000"; exactly `save_path` without a step)
// through SaveTensors, so the commit protocol of checkpoint/engine/shard_io.h
// applies. With write_state it then, as TF does (the retention of
// checkpoint/state/retention.h, shared with CheckpointManager):
//   1. appends the checkpoint to last_checkpoints() (moving it to the end if
//      the path, lexically normalized, was saved before); when more than
//      max_to_keep are listed the oldest leave the list;
//   2. writes the state file (`latest_filename` in the directory holding the
//      checkpoint's files: "." for "model", "/" for "/model"):
//      model_checkpoint_path = the new checkpoint, all_model_checkpoint_paths
//      = last_checkpoints() (with max_to_keep == 0: only the new one), with
//      their timestamps; relative to the directory when save_relative_paths,
//      else absolute (made so with rank 0's working directory);
//   3. only then deletes the checkpoints that left the list, except those
//      preserved by keep_checkpoint_every_n_hours: a leaving checkpoint whose
//      timestamp is later than the next preservation time (creation time + n
//      hours, advanced by n hours on every preservation) stays on disk.
// With max_to_keep == 0 nothing is tracked and nothing is deleted.
//
// Restore(save_path) reads every variable in its current layout, whatever
// mesh or rank count saved it. NotFound when there is no committed
// checkpoint or a key is missing; FailedPrecondition for a dtype or shape
// that differs, unless `reshape` is set and the element counts agree: the
// saved tensor is then read whole into a staging buffer on every rank and
// re-sliced into the variable's shards by row-major flat index.
//
// Empty var_list: InvalidArgument, unless allow_empty. Then, as TF, Save
// writes nothing and returns "" (and touches no state file), and Restore
// reads nothing and returns OK.
//
// Collections (Saver::SetCollection) are named lists of strings saved with
// every checkpoint, the counterpart of a meta graph's collections. They are
// stored in the index's user_metadata under "collection:<name>" in the
// encoding of EncodeCollection (count, then base64 items; see below), which
// keeps arbitrary bytes safe inside the proto's UTF-8 strings.
//
// Every call except the accessors is collective over the communicator:
// every rank must make the same calls with the same arguments and gets the
// same status. File operations on the directory are done by rank 0, and
// rank 0's clock is the one used. Not thread-safe. The communicator and the
// variables must outlive the Saver.
//
//   SaverOptions o;
//   o.max_to_keep = 3;
//   auto saver = *Saver::Create(comm, {{"dense/kernel", w}, {"dense/bias", b}}, o);
//   saver->SetCollection("train_op", {"dense/kernel", "dense/bias"});
//   absl::StatusOr<std::string> p = saver->Save("/ckpt/run/model", step);
//   ...
//   absl::Status s = saver->Restore(*LatestCheckpoint("/ckpt/run"));
//
//   // Elsewhere, without the model's code:
//   Mesh mesh = *Mesh::Create({{"x", comm->size()}}, comm->rank(), comm->size());
//   ImportedStructure s = *ImportStructure(comm, "/ckpt/run/model-1000", mesh);
//   // Or from TensorFlow's export: variables, collections, values.
//   ImportedStructure t = *ImportMetaGraph(comm, "/tf/run/model.ckpt-100.meta", mesh);
#ifndef MESHCKPT_CHECKPOINT_SAVER_SAVER_H_
#define MESHCKPT_CHECKPOINT_SAVER_SAVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/directory_lock.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

class CheckpointHandle;  // checkpoint/engine/checkpoint_handle.h

struct SaverOptions {
  // Checkpoints tracked in last_checkpoints() and kept on disk; 0 keeps all
  // on disk and lists only the latest in the state file. Must be >= 0.
  int max_to_keep = 5;
  // A checkpoint leaving last_checkpoints() stays on disk when its
  // timestamp is later than the next preservation time: the Saver's
  // creation plus this many hours, advanced by as much at each preservation
  // (TF's rule; not counted from the preserved checkpoint's own time).
  // Must be > 0 (+infinity: never preserve).
  double keep_checkpoint_every_n_hours = 10000.0;
  // "model-00001000" (at least 8 digits) instead of "model-1000".
  bool pad_step_number = false;
  // State file paths relative to the directory (else absolute).
  bool save_relative_paths = true;
  // Name of the state file, a plain file name.
  std::string latest_filename = kDefaultLatestFilename;
  // An empty var_list is accepted (Save and Restore are then no-ops).
  bool allow_empty = false;
  // Restore into a variable of another shape with the same element count,
  // by row-major flat index.
  bool reshape = false;
  // What to do where the filesystem cannot lock a directory saved into.
  DirectoryLockPolicy directory_lock = DirectoryLockPolicy::kIfSupported;
  // Restore one variable per RestoreTensors call: bounded memory. The
  // checkpoint is still opened once for all of them.
  bool restore_sequentially = false;
  // Seconds since the epoch; default: the real time. Only rank 0's is used.
  std::function<double()> clock;
  // Transfer mode, MPI-IO hints, checksum verification, progress.
  IoOptions io;
};

class Saver {
 public:
  // Collective. InvalidArgument (on every rank): null communicator or
  // variable, duplicate names, a name that is not a valid dataset path
  // (UTF-8, '/'-separated, no empty, "." or ".." parts) or is a group of
  // another name ("a" and "a/b"), a variable whose mesh does not
  // span comm->size() ranks seen from comm->rank(), var_lists that differ
  // between ranks, an empty var_list without allow_empty, bad options.
  static absl::StatusOr<std::unique_ptr<Saver>> Create(
      Communicator* comm, std::map<std::string, DVariable*> var_list,
      SaverOptions options = {});
  static absl::StatusOr<std::unique_ptr<Saver>> Create(Communicator* comm,
                                                       std::vector<DVariable*> var_list,
                                                       SaverOptions options = {});

  // Collective. Writes the checkpoint and returns its prefix; see the file
  // comment for the state file and retention. InvalidArgument for an empty
  // or non-UTF-8 save_path or one ending in '/'; NotFound when its directory
  // does not exist; FailedPrecondition naming the holder when another job
  // holds the directory's lock (rank 0 takes it at the first save into a
  // directory and keeps it for the Saver's lifetime; io/fs/directory_lock.h). An error
  // after the checkpoint was committed (state file, deletion) is returned as such ("saved
  // '...', then: ..."), but last_checkpoints() already lists the new checkpoint.
  absl::StatusOr<std::string> Save(const std::string& save_path,
                                   std::optional<int64_t> global_step = std::nullopt,
                                   bool write_state = true);

  // Collective. Restores every variable from the checkpoint at `save_path`
  // (errors: see the file comment). Checks happen before any data is read;
  // an I/O or checksum error with restore_sequentially may leave the
  // variables restored before it changed.
  absl::Status Restore(const std::string& save_path);
  // Collective. As above, from a checkpoint already open (e.g. one whose
  // index the caller has looked at; checkpoint/engine/checkpoint_handle.h):
  // its index is not read again, and every variable, with or without
  // restore_sequentially, comes from the data file it opened.
  absl::Status Restore(CheckpointHandle& checkpoint);

  // Checkpoints not yet deleted by this Saver, oldest first, as returned by
  // Save (or as given to the two setters below).
  const std::vector<std::string>& last_checkpoints() const { return paths_; }
  // Replaces last_checkpoints() (oldest first, with their timestamps).
  void SetLastCheckpointsWithTime(
      std::vector<std::pair<std::string, double>> paths_with_time);
  // Collective. After a crash: takes `paths` (e.g. the state file's
  // all_model_checkpoint_paths resolved with ResolveCheckpointPath) as
  // last_checkpoints(), keeping only those that are committed (rank 0
  // checks), each timed by its index file's modification time.
  void RecoverLastCheckpoints(const std::vector<std::string>& paths);

  // Named string lists saved with every later checkpoint. InvalidArgument
  // for a name that is empty or not printable ASCII. Replaces an existing
  // collection of that name. Call with the same arguments on every rank.
  absl::Status SetCollection(const std::string& name, std::vector<std::string> values);
  const std::map<std::string, std::vector<std::string>>& collections() const {
    return collections_;
  }

  // The variables by checkpoint key.
  const std::map<std::string, DVariable*>& var_list() const { return vars_; }
  const SaverOptions& options() const { return options_; }
  Communicator* comm() const { return comm_; }

 private:
  Saver(Communicator* comm, std::map<std::string, DVariable*> vars, SaverOptions options,
        double created)
      : comm_(comm),
        vars_(std::move(vars)),
        options_(std::move(options)),
        retention_(RetentionPolicy{options_.max_to_keep,
                                   options_.keep_checkpoint_every_n_hours,
                                   PreservationRule::kFixedPeriods},
                   created) {}

  // Rank 0's clock() on every rank.
  double Now();

  Communicator* comm_;
  std::map<std::string, DVariable*> vars_;
  SaverOptions options_;
  RetentionList retention_;         // last_checkpoints() with their times.
  std::vector<std::string> paths_;  // retention_'s prefixes.
  std::map<std::string, std::vector<std::string>> collections_;
  DirectoryLockSet locks_;  // Rank 0's, of every directory saved into.
};

// ------------------------------------------------------------- structure

struct ImportedStructure {
  // In the index's tensor order; named `<name_scope>/<key>`.
  std::vector<std::unique_ptr<DVariable>> variables;
  std::map<std::string, std::vector<std::string>> collections;
  // Over `variables`, keyed by the checkpoint keys (without the scope), so
  // it restores from and saves to checkpoints of the original model.
  std::unique_ptr<Saver> saver;
  // ImportMetaGraph only: variables the restored checkpoint has no value
  // for (left zero), by checkpoint key.
  std::vector<std::string> not_in_checkpoint;
};

// Collective. Recreates every tensor of the checkpoint at `save_path` as a
// DVariable (name, dtype, shape, and the saved layout re-targeted onto
// `mesh`: a sharding spec is kept when `mesh` has a dimension of that name,
// else that tensor dimension becomes unsharded), under `name_scope` when not
// empty (a trailing '/' is optional), then restores their values unless
// !restore_values (they stay zero). Also returns the checkpoint's
// collections. NotFound without a committed checkpoint; InvalidArgument for
// a bad scope or a mesh whose rank count is not comm->size(); DataLoss for a
// collection that does not decode.
absl::StatusOr<ImportedStructure> ImportStructure(Communicator* comm,
                                                  const std::string& save_path,
                                                  const Mesh& mesh,
                                                  const std::string& name_scope = "",
                                                  bool restore_values = true,
                                                  SaverOptions saver_options = {});

// A variable of a TensorFlow meta graph, as a layout chooser sees it.
struct MetaGraphVariable {
  std::string name;  // TF's variable name ("dense/kernel"), the checkpoint key
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  bool trainable = false;
};

struct MetaGraphImportOptions {
  // Prefix of the DVariables' names (as ImportStructure's name_scope).
  std::string name_scope;
  // Restore the values from `checkpoint` (default: the .meta path without
  // ".meta", where tf.compat.v1.train.Saver exports it).
  bool restore_values = true;
  std::string checkpoint;
  // Each variable's layout on the mesh; unset: replicated. Must give the
  // same answer on every rank.
  std::function<absl::StatusOr<Layout>(const MetaGraphVariable&, const Mesh&)> layout;
  // For the returned Saver; the meta graph's SaverDef, when it has one,
  // replaces max_to_keep and keep_checkpoint_every_n_hours unless
  // !use_saver_def.
  SaverOptions saver_options;
  bool use_saver_def = true;
};

// Collective. import_meta_graph for a TensorFlow 1 `.meta` file (a binary
// MetaGraphDef, as tf.compat.v1.train.Saver exports it): rebuilds as
// DVariables on `mesh` the global variables (the `variables` collection and
// any trainable ones it lacks; every variable node of the graph when it has
// no such collection) with their name, dtype and static shape, and a Saver
// over them keyed by TF's names, so it restores from and saves to TF's
// name-based checkpoints. A partitioned variable (parts with save_slice_info)
// becomes one DVariable of its full name and shape, the key its checkpoint
// uses; parts that do not tile the full shape are refused. Collections come
// back as string lists: node lists as node names, variable collections as
// variable names (":0" dropped; a partitioned variable once, by its full
// name), other bytes lists as their bytes, numbers in decimal ("%.9g" for
// floats), Any lists as their type URLs. Then restores the values from the
// checkpoint beside the file (unless !restore_values): variables it holds no
// value for stay zero and are listed in not_in_checkpoint (as TF, where a
// Saver restores only its own variables).
//
// Errors (the same on every rank), naming the variable and the file:
// InvalidArgument for an unknown shape (unknown rank or a -1 dimension), a
// layout that does not fit, a bad scope or a mesh whose rank count is not
// comm->size(); Unimplemented for a dtype meshckpt lacks (quantized,
// resource, variant); DataLoss for a file that is not a MetaGraphDef or a
// collection naming a variable the graph lacks; NotFound without the file
// or, with values, without the checkpoint.
absl::StatusOr<ImportedStructure> ImportMetaGraph(Communicator* comm,
                                                  const std::string& meta_graph_path,
                                                  const Mesh& mesh,
                                                  MetaGraphImportOptions options = {});

// The structure is exported by every Saver::Save (the index holds names,
// dtypes, shapes and layouts; collections go to user_metadata). This writes
// a checkpoint of `saver`'s variables at exactly `save_path`, without
// touching the state file or last_checkpoints(): the meta-graph export of
// TF. Collective.
absl::StatusOr<std::string> ExportStructure(Saver& saver, const std::string& save_path);

// user_metadata key of collection `name`: "collection:<name>".
inline constexpr absl::string_view kCollectionKeyPrefix = "collection:";
// The encoding of a collection: the decimal item count, then for each item
// ',' and the item in standard base64 (with padding). [] -> "0",
// [""] -> "1,", ["a", "bc"] -> "2,YQ==,YmM=". Pure ASCII, unambiguous for any
// bytes, and a count mismatch reveals truncation.
std::string EncodeCollection(const std::vector<std::string>& values);
// DataLoss when `encoded` is not such an encoding.
absl::StatusOr<std::vector<std::string>> DecodeCollection(absl::string_view encoded);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_SAVER_SAVER_H_
