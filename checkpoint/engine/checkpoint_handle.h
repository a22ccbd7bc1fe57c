// CheckpointHandle: a committed checkpoint opened for restoring, once.
//
// Opening is collective: rank 0 reads `<prefix>.index`, every rank decodes
// and validates the same bytes (CheckpointIndex), every rank opens
// `<prefix>.h5` (ChunkSource, io/transfer/chunk_source.h: direct or MPI-IO
// reads as IoOptions::transfer_mode says) and checks that the file it
// opened has the size the index committed. Everything a restore then reads
// comes from that index and that open file, however many RestoreTensors
// calls it makes and however much later (deferred values): a newer save
// renamed over the prefix meanwhile changes nothing the handle reads.
//
//   absl::StatusOr<std::unique_ptr<CheckpointHandle>> ckpt =
//       CheckpointHandle::Open(comm, "/ckpt/step-10");
//   if (!ckpt.ok()) return ckpt.status();
//   const CheckpointIndex::Tensor* w = (*ckpt)->index().Find("model/w");
//   absl::Status s = RestoreTensors(**ckpt, {request}, IoOptions());
//
// Two formats, told apart by the index file: meshckpt's own, and
// TensorFlow's TensorBundle V2 (`<prefix>.index` a LevelDB-format table plus
// `<prefix>.data-NNNNN-of-MMMMM`, as tf.train.Checkpoint and the TF1 Saver
// write). For a bundle the handle presents an index synthesized from the
// bundle's entries (each tensor one chunk, replicated on a one-device mesh;
// the object graph translated from TensorFlow's when there is one) and
// reads through TensorFlow's format, checking each entry's CRC32C;
// everything built on the handle reads both without knowing which.
//
// The communicator must outlive the handle. Closing (Close or destruction)
// is not collective. Used by one thread at a time.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_
#define MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/chunk_source.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {
namespace internal {
class TfCheckpoint;
}  // namespace internal

enum class CheckpointFormat {
  kMeshckpt,
  kTensorFlow,  // TensorBundle V2.
};

// An entry of a TensorFlow checkpoint that is listed but cannot be read:
// DT_VARIANT, DT_RESOURCE and dtypes meshckpt does not have.
struct UnreadableTensor {
  std::string key;
  std::string dtype;  // TensorFlow's name, e.g. "DT_VARIANT".
  std::vector<int64_t> shape;
};

class CheckpointHandle {
 public:
  // Collective over `comm`; the same status on every rank. Opens a
  // TensorFlow checkpoint when `<prefix>.index` is one (InvalidArgument for
  // a TensorFlow V1 checkpoint at `prefix`). Uses
  // options.transfer_mode and mpi_hints (the rest of IoOptions is per
  // read). NotFound when there is no index (no committed checkpoint at
  // `prefix`); DataLoss for a corrupt index, or a data file that is missing
  // or not the size committed (a TensorFlow checkpoint's data files are
  // opened and checked at their first read instead); FailedPrecondition for
  // an index written for a newer reader.
  static absl::StatusOr<std::unique_ptr<CheckpointHandle>> Open(
      Communicator& comm, const std::string& prefix,
      const IoOptions& options = IoOptions());

  ~CheckpointHandle();
  CheckpointHandle(const CheckpointHandle&) = delete;
  CheckpointHandle& operator=(const CheckpointHandle&) = delete;

  Communicator& comm() const { return *comm_; }
  const std::string& prefix() const { return prefix_; }
  const CheckpointIndex& index() const { return index_; }
  CheckpointFormat format() const {
    return tf_ != nullptr ? CheckpointFormat::kTensorFlow : CheckpointFormat::kMeshckpt;
  }
  // The data files read: `<prefix>.h5`, or a bundle's shards in order.
  std::vector<std::string> data_files() const;
  // A bundle's entries that are listed but not in the index; empty for ours.
  const std::vector<UnreadableTensor>& unreadable() const;
  // Unimplemented, naming the key and the file, when `key` is one of
  // unreadable(); OK otherwise.
  absl::Status CheckReadable(absl::string_view key) const;
  // The bundle behind a TensorFlow checkpoint (engine-internal); nullptr
  // for ours.
  internal::TfCheckpoint* tensorflow() const { return tf_.get(); }

  // FailedPrecondition once Close() was called.
  absl::Status CheckOpen() const;

  // The open data file; FailedPrecondition once closed, and for a
  // TensorFlow checkpoint, which has no HDF5 file.
  absl::StatusOr<ChunkSource*> data();

  // Reads `box` (global coordinates) of tensor `key` into `out` (row-major
  // over the box; an array of std::string for strings), verifying checksums
  // when `verify_checksums`. This process only, not collective. NotFound for
  // an unknown key, InvalidArgument for a box outside the tensor, DataLoss
  // for a checksum mismatch or unreadable data.
  absl::Status ReadBox(absl::string_view key, const Box& box, void* out,
                       bool verify_checksums = true);
  // OK when the data file holds the dataset of `t` with its type and shape;
  // DataLoss otherwise (always OK for a TensorFlow checkpoint: its entries
  // are checked when read). Not collective.
  absl::Status CheckDataset(const CheckpointIndex::Tensor& t);

  // Closes the data file; the index stays. Not collective. Reads afterwards
  // fail with FailedPrecondition. (A TensorFlow checkpoint's data files stay
  // open until the handle is destroyed.)
  void Close();

 private:
  CheckpointHandle(Communicator* comm, std::string prefix, CheckpointIndex index,
                   std::unique_ptr<ChunkSource> data,
                   std::unique_ptr<internal::TfCheckpoint> tf);
  static absl::StatusOr<std::unique_ptr<CheckpointHandle>> OpenTensorFlow(
      Communicator& comm, const std::string& prefix);

  Communicator* comm_;
  std::string prefix_;
  CheckpointIndex index_;
  std::unique_ptr<ChunkSource> data_;
  std::unique_ptr<internal::TfCheckpoint> tf_;
  bool closed_ = false;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_
