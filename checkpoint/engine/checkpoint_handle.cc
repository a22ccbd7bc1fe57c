// CheckpointHandle: a checkpoint opened once for a restore, and boxes read from it.
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/tensor_reader.h"

namespace meshckpt {

absl::StatusOr<std::unique_ptr<CheckpointHandle>> CheckpointHandle::Open(
    Communicator& comm, const std::string& prefix, const IoOptions& options) {
  PhaseTrace trace("open", comm.rank());
  MESHCKPT_ASSIGN_OR_RETURN(CheckpointIndex index, CheckpointIndex::Read(comm, prefix));
  trace.Mark("index");

  // The index is the commit record: from here on, anything wrong with the
  // data file is damage to a committed checkpoint. Each rank checks the
  // size of the file it opened and will read, not of what the path names.
  const std::string path = DataFilePath(prefix);
  ChunkSourceOptions o;
  o.mode = options.transfer_mode == TransferMode::kDirect
               ? ChunkSourceOptions::Mode::kDirect
               : ChunkSourceOptions::Mode::kMpiIo;
  o.mpi_hints = options.mpi_hints;
  o.expected_size = index.record().data_file_size;
  absl::StatusOr<std::unique_ptr<ChunkSource>> data = ChunkSource::Open(comm, path, o);
  absl::Status local = data.status();
  if (absl::IsNotFound(local)) {
    local = absl::DataLossError(
        absl::StrCat("data file '", path, "' of committed checkpoint '", prefix,
                     "' is missing (its index '", index.path(), "' exists)"));
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  trace.Mark("data");
  return std::unique_ptr<CheckpointHandle>(
      new CheckpointHandle(&comm, prefix, std::move(index), *std::move(data)));
}

CheckpointHandle::~CheckpointHandle() { Close(); }

absl::StatusOr<ChunkSource*> CheckpointHandle::data() {
  if (data_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint '", prefix_, "' was closed before this read"));
  }
  return data_.get();
}

absl::Status CheckpointHandle::ReadBox(absl::string_view key, const Box& box, void* out,
                                       bool verify_checksums) {
  const CheckpointIndex::Tensor* saved = index_.Find(key);
  if (saved == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor '", key, "' is not in checkpoint '", prefix_, "'"));
  }
  if (!Box::FromShape(saved->shape).Contains(box)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "box ", box.ToString(), " (rank ", box.rank(), ") is not inside tensor '", key,
        "' of shape [", absl::StrJoin(saved->shape, ","), "] in checkpoint '", prefix_,
        "'"));
  }
  if (box.empty()) return absl::OkStatus();
  MESHCKPT_ASSIGN_OR_RETURN(ChunkSource * source, data());
  IoOptions options;
  options.verify_checksums = verify_checksums;
  internal::TensorReader reader(*source, index_, *saved, options);
  return reader.Fill(box, out);
}

absl::Status CheckpointHandle::CheckDataset(const CheckpointIndex::Tensor& t) {
  MESHCKPT_ASSIGN_OR_RETURN(ChunkSource * source, data());
  return source->CheckDataset({t.dataset, t.dtype, t.shape});
}

void CheckpointHandle::Close() {
  // A read-only file: nothing to do about an error closing it.
  if (data_ != nullptr) (void)data_->Close();
  data_.reset();
}

}  // namespace meshckpt
