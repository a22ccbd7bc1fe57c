// CheckpointHandle: a checkpoint opened once for a restore, and boxes read from it.
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/tensor_reader.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/engine/tf_checkpoint.h"

namespace meshckpt {
namespace {

// What rank 0 finds at the prefix, decided once for every rank.
enum Found : char { kOurs = 0, kBundle = 1, kMaybeV1 = 2 };

Found Probe(const std::string& prefix) {
  if (internal::IsTensorFlowCheckpoint(prefix)) return kBundle;
  // TensorFlow's V1 format is one table file named by the prefix itself.
  struct stat st;
  const std::string index = IndexFilePath(prefix);
  if (::stat(index.c_str(), &st) != 0 && ::stat(prefix.c_str(), &st) == 0 &&
      S_ISREG(st.st_mode)) {
    return kMaybeV1;
  }
  return kOurs;
}

}  // namespace

CheckpointHandle::CheckpointHandle(Communicator* comm, std::string prefix,
                                   CheckpointIndex index,
                                   std::unique_ptr<ChunkSource> data,
                                   std::unique_ptr<internal::TfCheckpoint> tf)
    : comm_(comm),
      prefix_(std::move(prefix)),
      index_(std::move(index)),
      data_(std::move(data)),
      tf_(std::move(tf)) {}

absl::StatusOr<std::unique_ptr<CheckpointHandle>> CheckpointHandle::OpenTensorFlow(
    Communicator& comm, const std::string& prefix) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<internal::TfCheckpoint> tf,
                            internal::TfCheckpoint::Open(comm, prefix));
  // Every rank builds the same index from the same bundle; a failure is
  // therefore the same everywhere, and agreeing costs one collective.
  absl::StatusOr<CheckpointIndex> index = tf->BuildIndex();
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(index.status()));
  return std::unique_ptr<CheckpointHandle>(
      new CheckpointHandle(&comm, prefix, *std::move(index), nullptr, std::move(tf)));
}

absl::StatusOr<std::unique_ptr<CheckpointHandle>> CheckpointHandle::Open(
    Communicator& comm, const std::string& prefix, const IoOptions& options) {
  std::string found(1, kOurs);
  if (comm.rank() == 0) found[0] = Probe(prefix);
  comm.Broadcast(&found, 0);
  if (found[0] == kBundle) return OpenTensorFlow(comm, prefix);
  if (found[0] == kMaybeV1) {
    // InvalidArgument for a V1 checkpoint; anything else is not
    // TensorFlow's, and our own NotFound below says so better.
    absl::StatusOr<std::unique_ptr<CheckpointHandle>> tf = OpenTensorFlow(comm, prefix);
    if (!absl::IsNotFound(tf.status())) return tf;
  }
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
      new CheckpointHandle(&comm, prefix, std::move(index), *std::move(data), nullptr));
}

CheckpointHandle::~CheckpointHandle() { Close(); }

absl::Status CheckpointHandle::CheckOpen() const {
  if (!closed_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("checkpoint '", prefix_, "' was closed before this read"));
}

std::vector<std::string> CheckpointHandle::data_files() const {
  if (tf_ != nullptr) return tf_->data_files();
  return {DataFilePath(prefix_)};
}

const std::vector<UnreadableTensor>& CheckpointHandle::unreadable() const {
  static const std::vector<UnreadableTensor>* const kNone =
      new std::vector<UnreadableTensor>();
  return tf_ != nullptr ? tf_->unreadable() : *kNone;
}

absl::Status CheckpointHandle::CheckReadable(absl::string_view key) const {
  return tf_ != nullptr ? tf_->CheckReadable(key) : absl::OkStatus();
}

absl::StatusOr<ChunkSource*> CheckpointHandle::data() {
  if (tf_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint '", prefix_,
                     "' is a TensorFlow checkpoint: it has no HDF5 data file"));
  }
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
    MESHCKPT_RETURN_IF_ERROR(CheckReadable(key));
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
  if (tf_ != nullptr) {
    MESHCKPT_RETURN_IF_ERROR(CheckOpen());
    return tf_->ReadBox(*saved, box, out, verify_checksums);
  }
  MESHCKPT_ASSIGN_OR_RETURN(ChunkSource * source, data());
  IoOptions options;
  options.verify_checksums = verify_checksums;
  internal::TensorReader reader(*source, index_, *saved, options);
  return reader.Fill(box, out);
}

absl::Status CheckpointHandle::CheckDataset(const CheckpointIndex::Tensor& t) {
  if (tf_ != nullptr) return absl::OkStatus();
  MESHCKPT_ASSIGN_OR_RETURN(ChunkSource * source, data());
  return source->CheckDataset({t.dataset, t.dtype, t.shape});
}

void CheckpointHandle::Close() {
  closed_ = true;
  // A read-only file: nothing to do about an error closing it.
  if (data_ != nullptr) (void)data_->Close();
  data_.reset();
}

}  // namespace meshckpt
