// RestoreTensors: checks the request, then reads each needed region once,
// on one rank, and hands it to the others that need it (restore_reads.h).
#include <xxhash.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/restore_reads.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/engine/tf_checkpoint.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt {
namespace {

absl::Status CheckRequest(const Communicator& comm, const CheckpointIndex& index,
                          const RestoreTensor& t) {
  MESHCKPT_RETURN_IF_ERROR(internal::CheckLayoutFitsComm(t.key, t.layout, comm));
  const CheckpointIndex::Tensor* saved = index.Find(t.key);
  if (saved == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor '", t.key, "' is not in checkpoint '", index.path(), "'"));
  }
  if (saved->dtype != t.dtype) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", t.key, "' was saved as ", DTypeName(saved->dtype),
                     " but is restored as ", DTypeName(t.dtype), " (checkpoint '",
                     index.path(), "')"));
  }
  if (saved->shape != t.shape) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", t.key, "' was saved with shape [",
                     absl::StrJoin(saved->shape, ","), "] but is restored with shape [",
                     absl::StrJoin(t.shape, ","), "] (checkpoint '", index.path(), "')"));
  }
  MESHCKPT_ASSIGN_OR_RETURN(ShardMap map, ShardMap::Create(t.layout, t.shape));
  return internal::CheckBuffers(t.key, map, t.device_data, t.shard_data);
}

// Everything that decides which collectives a restore runs: the keys, and
// since reads are shared, each tensor's layout, plus the read policy and
// whether checksums are checked (TensorFlow bundles verify collectively).
uint64_t Fingerprint(absl::Span<const RestoreTensor> tensors, const IoOptions& options,
                     ShardReads reads) {
  std::string text =
      absl::StrCat(static_cast<int>(reads), options.verify_checksums, "\n");
  for (const RestoreTensor& t : tensors) {
    absl::StrAppend(&text, t.key, "|", static_cast<int>(t.dtype), "|");
    for (int64_t s : t.shape) absl::StrAppend(&text, s, ",");
    for (const std::string& s : t.layout.sharding_specs()) absl::StrAppend(&text, s, ",");
    for (const MeshDimension& d : t.layout.mesh().dims()) {
      absl::StrAppend(&text, d.name, "=", d.size, ",");
    }
    text += "\n";
  }
  return XXH3_64bits(text.data(), text.size());
}

}  // namespace

absl::Status RestoreTensors(CheckpointHandle& checkpoint,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options) {
  return RestoreTensors(checkpoint, tensors, options, nullptr);
}

absl::Status RestoreTensors(CheckpointHandle& checkpoint,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options, RestoreStats* stats,
                            ShardReads reads) {
  Communicator& comm = checkpoint.comm();
  const CheckpointIndex& index = checkpoint.index();
  PhaseTrace trace("restore", comm.rank());
  absl::Status local;
  for (const RestoreTensor& t : tensors) {
    local = checkpoint.CheckReadable(t.key);
    if (local.ok()) local = CheckRequest(comm, index, t);
    if (!local.ok()) break;
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeSameOnAllRanks(
      comm, Fingerprint(tensors, options, reads),
      "tensor lists, layouts and read options to RestoreTensors"));
  trace.Mark("check");
  if (internal::TfCheckpoint* tf = checkpoint.tensorflow()) {
    // A TensorFlow checkpoint: the same requests, read through its format.
    MESHCKPT_RETURN_IF_ERROR(comm.Agree(checkpoint.CheckOpen()));
    if (options.verify_checksums) {
      MESHCKPT_RETURN_IF_ERROR(tf->VerifyRequested(comm, index, tensors));
    }
    local = tf->Read(index, tensors, options);
    trace.Mark("read_all");
    return comm.Agree(local);
  }
  // Agreed inside: a read that failed anywhere fails every rank alike.
  return internal::ReadAndDistribute(comm, index, checkpoint.data(), tensors, options,
                                     &trace, stats, reads);
}

absl::Status RestoreTensors(Communicator& comm, const std::string& prefix,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> checkpoint,
                            CheckpointHandle::Open(comm, prefix, options));
  return RestoreTensors(*checkpoint, tensors, options);
}

absl::StatusOr<IndexRecord> ReadCheckpointIndex(Communicator& comm,
                                                const std::string& prefix) {
  std::string tensorflow(1, '\0');
  if (comm.rank() == 0) tensorflow[0] = internal::IsTensorFlowCheckpoint(prefix) ? 1 : 0;
  comm.Broadcast(&tensorflow, 0);
  if (tensorflow[0] != 0) {
    // The index a handle synthesizes from the bundle.
    MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> checkpoint,
                              CheckpointHandle::Open(comm, prefix));
    return checkpoint->index().record();
  }
  MESHCKPT_ASSIGN_OR_RETURN(CheckpointIndex index, CheckpointIndex::Read(comm, prefix));
  return index.record();
}

}  // namespace meshckpt
