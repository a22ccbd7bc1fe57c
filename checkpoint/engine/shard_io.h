// checkpoint/engine/ owns SaveTensors/RestoreTensors on raw buffers: the
// save plan, driving the ChunkSink, the commit protocol, CheckpointIndex
// and CheckpointHandle (an open checkpoint), reading regions for a restore,
// and the fault points. It may use io/, comm/, layout/, mesh/ and base/;
// none of the APIs built on it (object/, saver/, manager/, reader/).
//
// Collective save and restore of sharded tensors: the engine under the
// checkpoint API.
//
// Save: every rank passes the same list of tensors (key, dtype, global shape,
// layout) with the buffers of its own devices. Each distinct shard is written
// once, by the rank WriterAssigner picks, into one HDF5 file shared by all
// ranks; then the commit protocol runs:
//   1. data goes to `<prefix>.h5.partial-<id>` (see TransferMode in
//      io/transfer/io_options.h);
//   2. the file is closed collectively and every rank fsyncs it;
//   3. ranks agree on success;
//   4. rank 0 renames the data file to `<prefix>.h5`, writes the index to a
//      temporary, fsyncs and renames it to `<prefix>.index`, fsyncs the dir.
// A checkpoint exists exactly when its index does. A crash at any point
// leaves either no checkpoint at `prefix` or a complete one.
//
// Restore: the checkpoint is opened once (checkpoint_handle.h: the index
// read, the data file opened and its size checked), then every rank passes
// the same list of tensors it wants (the keys must agree across ranks;
// InvalidArgument otherwise), each in its current layout (any mesh, any
// rank count, more devices than ranks) with buffers for its devices. Each
// rank reads only the regions its devices need, verifies the XXH3 checksum
// of every tile it read, and fills the buffers.
//
// Buffers, in one of two forms per tensor:
//   - device_data: one per local device of the layout's mesh, in
//     mesh.local_device_ids() order, each holding that device's box
//     (ShardMap::DeviceBox); null is allowed where that box is empty.
//   - shard_data (used when device_data is empty): one per distinct
//     non-empty shard this rank's devices hold, in ShardMap::LocalShards()
//     order, each holding ShardBox(shard). Its size follows the shards, not
//     the devices: use it when a rank has many devices (a 2^24-device mesh
//     over a small tensor needs a handful of buffers, not 2^24 pointers).
// Each buffer is row-major. For DType::kString a buffer is an array of
// std::string; otherwise raw elements of DTypeSize() bytes.
//
// Errors are the same on every rank (Communicator::Agree) and name the tensor,
// the rank and the file: InvalidArgument (bad input), NotFound (no such
// checkpoint or key, or the prefix's directory does not exist),
// DataLoss also when a committed checkpoint's data file is gone, FailedPrecondition
// (dtype/shape mismatch, newer format), DataLoss (checksum, truncation, inconsistent
// index).
//
// Example (2 ranks, a [1024, 512] float32 matrix split by rows):
//   Mesh mesh = *Mesh::Create({{"x", 2}}, comm.rank(), comm.size());
//   Layout rows = *Layout::Create({"x", "unsharded"}, mesh);
//   std::vector<float> mine(512 * 512);
//   SaveTensor t{"model/w", "", DType::kFloat32, {1024, 512}, rows, {mine.data()}};
//   absl::Status s = SaveTensors(comm, "/ckpt/step-10", {t}, CheckpointContents(),
//                                IoOptions());
//
// What a save stores besides the tensors (CheckpointContents) is separate
// from how bytes move (IoOptions, io/transfer/io_options.h), which saves and
// restores share.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/io/transfer/io_options.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt {

class CheckpointHandle;

struct SaveTensor {
  std::string key;
  // HDF5 dataset path; empty means the key. '/'-separated names, none of
  // them empty, "." or "..", and no path may be a group of another.
  std::string dataset;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  Layout layout;
  std::vector<const void*> device_data;
  std::vector<const void*> shard_data = {};  // When device_data is empty.
};

struct RestoreTensor {
  std::string key;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  Layout layout;
  std::vector<void*> device_data;
  std::vector<void*> shard_data = {};  // When device_data is empty.
};

// What a save records in the index besides the tensors.
struct CheckpointContents {
  // The checkpoint's mesh as recorded in the index (tensors on other meshes
  // carry their own); default: the first tensor's. Must span comm.size()
  // ranks.
  std::optional<Mesh> mesh;
  ObjectGraph object_graph;
  std::map<std::string, std::string> user_metadata;
  int64_t save_counter = 0;
  int64_t step = 0;
};

// Names of the files of a checkpoint.
std::string DataFilePath(absl::string_view prefix);   // <prefix>.h5
std::string IndexFilePath(absl::string_view prefix);  // <prefix>.index

// Collective over `comm`. The layouts' meshes must have comm.size() ranks and
// be viewed from comm.rank().
absl::Status SaveTensors(Communicator& comm, const std::string& prefix,
                         absl::Span<const SaveTensor> tensors,
                         const CheckpointContents& contents, const IoOptions& io);

// Collective over the checkpoint's communicator: restores from a checkpoint
// already open (checkpoint_handle.h), reading only the data file the handle
// opened and nothing of the index again, so several calls (or calls much
// later) all see one checkpoint. Tensors not asked for are not read. The
// handle's transfer mode and MPI hints are those given to
// CheckpointHandle::Open; verify_checksums and progress are taken from here.
absl::Status RestoreTensors(CheckpointHandle& checkpoint,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options);
// Collective over `comm`: opens the checkpoint at `prefix` and restores from
// it, as above.
absl::Status RestoreTensors(Communicator& comm, const std::string& prefix,
                            absl::Span<const RestoreTensor> tensors, const IoOptions& io);

// The index of a committed checkpoint, validated (version, mesh, layouts,
// chunk cover). Collective: rank 0 reads, everyone gets the same answer.
// For a TensorFlow checkpoint, the index CheckpointHandle synthesizes.
absl::StatusOr<IndexRecord> ReadCheckpointIndex(Communicator& comm,
                                                const std::string& prefix);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_H_
