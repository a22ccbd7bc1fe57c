// RestoreTensors: each rank reads the regions its devices need from an open
// checkpoint (tensor_reader.h), verifying the checksum of every tile it reads.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/checkpoint/engine/tensor_reader.h"
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

uint64_t Fingerprint(absl::Span<const RestoreTensor> tensors) {
  std::string text;
  for (const RestoreTensor& t : tensors) absl::StrAppend(&text, t.key, "\n");
  return XXH3_64bits(text.data(), text.size());
}

absl::Status ReadAll(const CheckpointIndex& index, ChunkSource& source,
                     absl::Span<const RestoreTensor> tensors, const IoOptions& options,
                     PhaseTrace* trace) {
  // Per tensor, one read per distinct local shard, then copies to device
  // buffers that hold the same shard separately: work follows the shards
  // (and the device buffers the caller passed), not the mesh.
  std::vector<internal::LocalBuffers> buffers;
  buffers.reserve(tensors.size());
  int64_t total = 0, done = 0;
  for (const RestoreTensor& t : tensors) {
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();  // Checked.
    buffers.push_back(internal::LocalBuffersOf(map, t.device_data, t.shard_data));
    const internal::LocalBuffers& b = buffers.back();
    for (const auto& s : b.shards) total += s.box.num_elements() * DTypeSize(t.dtype);
    for (const auto& c : b.copies) {
      total += b.shards[c.from].box.num_elements() * DTypeSize(t.dtype);
    }
  }
  // Tensors are read in the order their bytes lie in the data file, not the
  // caller's: every backward jump restarts the kernel's readahead, and HDF5
  // keeps small datasets together, apart from the large ones.
  struct Job {
    int64_t offset;  // Lowest recorded chunk offset; index order after those.
    const CheckpointIndex::Tensor* saved;
    size_t request;
  };
  std::vector<Job> order;
  order.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const CheckpointIndex::Tensor* saved = index.Find(tensors[i].key);
    int64_t offset = std::numeric_limits<int64_t>::max();
    for (const std::optional<StorageBlock>& b : saved->storage) {
      if (b.has_value()) offset = std::min(offset, b->offset);
    }
    order.push_back({offset, saved, i});
  }
  std::sort(order.begin(), order.end(), [](const Job& a, const Job& b) {
    return std::tie(a.offset, a.saved->entry) < std::tie(b.offset, b.saved->entry);
  });
  for (const Job& job : order) {
    const RestoreTensor& t = tensors[job.request];
    const internal::LocalBuffers& b = buffers[job.request];
    internal::TensorReader reader(source, index, *job.saved, options, trace);
    for (const internal::LocalBuffers::Shard& s : b.shards) {
      MESHCKPT_RETURN_IF_ERROR(reader.Fill(s.box, s.data));
      done += s.box.num_elements() * DTypeSize(t.dtype);
      if (options.progress) options.progress(done, total);
    }
    for (const internal::LocalBuffers::Copy& c : b.copies) {
      const internal::LocalBuffers::Shard& from = b.shards[c.from];
      const int64_t n = from.box.num_elements();
      if (t.dtype == DType::kString) {
        std::copy_n(static_cast<const std::string*>(from.data), n,
                    static_cast<std::string*>(c.to));
      } else {
        std::memcpy(c.to, from.data, n * DTypeSize(t.dtype));
      }
      done += n * DTypeSize(t.dtype);
      if (options.progress) options.progress(done, total);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RestoreTensors(CheckpointHandle& checkpoint,
                            absl::Span<const RestoreTensor> tensors,
                            const IoOptions& options) {
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
      comm, Fingerprint(tensors), "tensor lists to RestoreTensors"));
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
  absl::StatusOr<ChunkSource*> data = checkpoint.data();
  local = data.ok() ? ReadAll(index, **data, tensors, options, &trace) : data.status();
  trace.Mark("read_all");
  absl::Status agreed = comm.Agree(local);
  trace.Mark("agree");
  return agreed;
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
