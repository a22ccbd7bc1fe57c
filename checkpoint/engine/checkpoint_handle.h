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
// The communicator must outlive the handle. Closing (Close or destruction)
// is not collective. Used by one thread at a time.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_
#define MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/chunk_source.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

class CheckpointHandle {
 public:
  // Collective over `comm`; the same status on every rank. Uses
  // options.transfer_mode and mpi_hints (the rest of IoOptions is per
  // read). NotFound when there is no index (no committed checkpoint at
  // `prefix`); DataLoss for a corrupt index, or a data file that is missing
  // or not the size committed; FailedPrecondition for an index written for
  // a newer reader.
  static absl::StatusOr<std::unique_ptr<CheckpointHandle>> Open(
      Communicator& comm, const std::string& prefix,
      const IoOptions& options = IoOptions());

  ~CheckpointHandle();
  CheckpointHandle(const CheckpointHandle&) = delete;
  CheckpointHandle& operator=(const CheckpointHandle&) = delete;

  Communicator& comm() const { return *comm_; }
  const std::string& prefix() const { return prefix_; }
  const CheckpointIndex& index() const { return index_; }

  // The open data file; FailedPrecondition once closed.
  absl::StatusOr<ChunkSource*> data();

  // Reads `box` (global coordinates) of tensor `key` into `out` (row-major
  // over the box; an array of std::string for strings), verifying checksums
  // when `verify_checksums`. This process only, not collective. NotFound for
  // an unknown key, InvalidArgument for a box outside the tensor, DataLoss
  // for a checksum mismatch or unreadable data.
  absl::Status ReadBox(absl::string_view key, const Box& box, void* out,
                       bool verify_checksums = true);
  // OK when the data file holds the dataset of `t` with its type and shape;
  // DataLoss otherwise. Not collective.
  absl::Status CheckDataset(const CheckpointIndex::Tensor& t);

  // Closes the data file; the index stays. Not collective. Reads afterwards
  // fail with FailedPrecondition.
  void Close();

 private:
  CheckpointHandle(Communicator* comm, std::string prefix, CheckpointIndex index,
                   std::unique_ptr<ChunkSource> data)
      : comm_(comm),
        prefix_(std::move(prefix)),
        index_(std::move(index)),
        data_(std::move(data)) {}

  Communicator* comm_;
  std::string prefix_;
  CheckpointIndex index_;
  std::unique_ptr<ChunkSource> data_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_HANDLE_H_
