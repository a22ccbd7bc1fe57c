// CheckpointReader: a committed checkpoint listed, read and verified in one process.
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/tf_checkpoint.h"
#include "meshckpt/io/format/checksum.h"

namespace meshckpt {
namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// Target bytes of one VerifyAll read.
constexpr int64_t kVerifyStagingBytes = int64_t{64} << 20;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

bool IsValueDType(DType dtype) {
  return dtype == DType::kInt64 || dtype == DType::kFloat64 || dtype == DType::kString;
}

// Element i of a TensorData of a value dtype.
ScalarValue ValueAt(const TensorData& data, int64_t i) {
  switch (data.dtype) {
    case DType::kInt64:
      return data.as<int64_t>()[i];
    case DType::kFloat64:
      return data.as<double>()[i];
    default:
      return data.strings[i];
  }
}

// `b` moved by `offset`.
Box Shifted(const Box& b, const std::vector<int64_t>& offset) {
  std::vector<int64_t> origin = b.origin();
  for (size_t d = 0; d < origin.size(); ++d) origin[d] += offset[d];
  return Box::Unchecked(std::move(origin), b.shape());
}

}  // namespace

CheckpointReader::CheckpointReader(std::string prefix, std::unique_ptr<Communicator> comm,
                                   std::unique_ptr<CheckpointHandle> checkpoint,
                                   bool verify_checksums)
    : prefix_(std::move(prefix)),
      comm_(std::move(comm)),
      checkpoint_(std::move(checkpoint)),
      verify_checksums_(verify_checksums) {}

CheckpointReader::~CheckpointReader() = default;

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(
    const std::string& prefix, bool verify_checksums) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> checkpoint,
                            CheckpointHandle::Open(*comm, prefix));
  return std::unique_ptr<CheckpointReader>(new CheckpointReader(
      prefix, std::move(comm), std::move(checkpoint), verify_checksums));
}

const CheckpointIndex::Tensor* CheckpointReader::FindOrNull(absl::string_view key) const {
  return checkpoint_->index().Find(key);
}

absl::StatusOr<const CheckpointIndex::Tensor*> CheckpointReader::FindOrError(
    absl::string_view key) const {
  const CheckpointIndex::Tensor* t = checkpoint_->index().Find(key);
  if (t == nullptr) {
    MESHCKPT_RETURN_IF_ERROR(checkpoint_->CheckReadable(key));
    return absl::NotFoundError(
        absl::StrCat("tensor '", key, "' is not in checkpoint '", prefix_, "'"));
  }
  return t;
}

namespace {

VariableInfo InfoOf(const CheckpointIndex::Tensor& t) {
  VariableInfo v;
  v.key = t.key;
  v.dataset = t.dataset;
  v.dtype = t.dtype;
  v.shape = t.shape;
  v.layout = t.layout.ToString();
  // The index validated that the element count fits in int64; bytes may
  // still overflow for absurd shapes, so saturate.
  const int64_t n = Box::FromShape(t.shape).num_elements();
  const int64_t esize = DTypeSize(t.dtype);
  v.bytes = (esize != 0 && n > kMaxInt64 / esize) ? kMaxInt64 : n * esize;
  v.num_chunks = static_cast<int>(t.chunks.size());
  return v;
}

}  // namespace

std::vector<VariableInfo> CheckpointReader::ListVariables() const {
  std::vector<VariableInfo> out;
  out.reserve(checkpoint_->index().tensors().size());
  for (const CheckpointIndex::Tensor& t : checkpoint_->index().tensors()) {
    out.push_back(InfoOf(t));
  }
  std::sort(out.begin(), out.end(),
            [](const VariableInfo& a, const VariableInfo& b) { return a.key < b.key; });
  return out;
}

bool CheckpointReader::HasTensor(absl::string_view key) const {
  return FindOrNull(key) != nullptr;
}

absl::StatusOr<VariableInfo> CheckpointReader::GetVariableInfo(
    absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const CheckpointIndex::Tensor* t, FindOrError(key));
  return InfoOf(*t);
}

absl::Status CheckpointReader::ReadInto(const CheckpointIndex::Tensor& t, const Box& box,
                                        TensorData* out, bool verify) const {
  out->dtype = t.dtype;
  out->shape = box.shape();
  out->bytes.clear();
  out->strings.clear();
  const int64_t n = box.num_elements();
  const int64_t esize = DTypeSize(t.dtype);
  if (esize != 0 && n > kMaxInt64 / esize) {
    return absl::ResourceExhaustedError(
        absl::StrCat("box ", box.ToString(), " of tensor '", t.key, "' in checkpoint '",
                     prefix_, "' is too large to read into memory"));
  }
  void* dst;
  // The shape comes from the file: a damaged or hostile one may claim more
  // than memory holds, which must be an error, not an exception.
  try {
    if (t.dtype == DType::kString) {
      out->strings.resize(n);
      dst = out->strings.data();
    } else {
      out->bytes.resize(n * esize);
      dst = out->bytes.data();
    }
  } catch (const std::exception&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("box ", box.ToString(), " of tensor '", t.key, "' in checkpoint '",
                     prefix_, "' does not fit in memory"));
  }
  return checkpoint_->ReadBox(t.key, box, dst, verify);
}

absl::StatusOr<TensorData> CheckpointReader::ReadTensor(absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const CheckpointIndex::Tensor* t, FindOrError(key));
  TensorData out;
  MESHCKPT_RETURN_IF_ERROR(
      ReadInto(*t, Box::FromShape(t->shape), &out, verify_checksums_));
  return out;
}

absl::StatusOr<TensorData> CheckpointReader::ReadBox(absl::string_view key,
                                                     const Box& box) const {
  MESHCKPT_ASSIGN_OR_RETURN(const CheckpointIndex::Tensor* t, FindOrError(key));
  if (!Box::FromShape(t->shape).Contains(box)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "box ", box.ToString(), " (rank ", box.rank(), ") is not inside tensor '", key,
        "' of shape ", ShapeString(t->shape), " in checkpoint '", prefix_, "'"));
  }
  TensorData out;
  MESHCKPT_RETURN_IF_ERROR(ReadInto(*t, box, &out, verify_checksums_));
  return out;
}

absl::StatusOr<ScalarValue> CheckpointReader::ReadValue(absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const CheckpointIndex::Tensor* t, FindOrError(key));
  if (!t->shape.empty() || !IsValueDType(t->dtype)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", key, "' in checkpoint '", prefix_, "' is ", DTypeName(t->dtype), " ",
        ShapeString(t->shape), ", not a value (a scalar int64, float64 or string)"));
  }
  TensorData data;
  MESHCKPT_RETURN_IF_ERROR(ReadInto(*t, Box(), &data, verify_checksums_));
  return ValueAt(data, 0);
}

absl::StatusOr<std::vector<ScalarValue>> CheckpointReader::ReadPerRankValues(
    absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const CheckpointIndex::Tensor* t, FindOrError(key));
  if (t->shape.size() != 1 || !IsValueDType(t->dtype)) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", key, "' in checkpoint '", prefix_, "' is ",
                     DTypeName(t->dtype), " ", ShapeString(t->shape),
                     ", not a per-rank value (a vector of int64, float64 or string)"));
  }
  TensorData data;
  MESHCKPT_RETURN_IF_ERROR(
      ReadInto(*t, Box::FromShape(t->shape), &data, verify_checksums_));
  std::vector<ScalarValue> out;
  out.reserve(t->shape[0]);
  for (int64_t i = 0; i < t->shape[0]; ++i) out.push_back(ValueAt(data, i));
  return out;
}

absl::Status CheckpointReader::VerifyTensor(const CheckpointIndex::Tensor& t,
                                            std::vector<std::string>* problems) const {
  if (internal::TfCheckpoint* tf = checkpoint_->tensorflow()) {
    absl::Status s = tf->VerifyTensor(t);
    if (absl::IsDataLoss(s)) {
      problems->push_back(std::string(s.message()));
      return absl::OkStatus();
    }
    return s;
  }
  // Dataset-level damage (missing, wrong type or shape) is one problem, not
  // one per tile.
  if (absl::Status dataset = checkpoint_->CheckDataset(t); !dataset.ok()) {
    if (!absl::IsDataLoss(dataset)) return dataset;
    problems->push_back(absl::StrCat("tensor '", t.key, "': ", dataset.message()));
    return absl::OkStatus();
  }
  // Reads `box` verified; a DataLoss is recorded and reported as false.
  TensorData scratch;
  auto read = [&](const Box& box,
                  std::vector<std::string>* found) -> absl::StatusOr<bool> {
    absl::Status s = ReadInto(t, box, &scratch, /*verify=*/true);
    if (s.ok()) return true;
    if (!absl::IsDataLoss(s)) return s;
    found->push_back(std::string(s.message()));
    return false;
  };

  const int64_t esize = DTypeSize(t.dtype);
  for (size_t c = 0; c < t.chunks.size(); ++c) {
    const Box& chunk = t.chunks[c];
    if (chunk.empty()) continue;
    if (t.dtype == DType::kString || chunk.rank() == 0) {
      // One tile (string chunks always are; a scalar is one element).
      MESHCKPT_ASSIGN_OR_RETURN(bool ok, read(chunk, problems));
      (void)ok;
      continue;
    }
    const TileGrid grid(chunk.shape(),
                        checkpoint_->index().chunk(t, static_cast<int>(c)).tile_shape);
    // Slabs of whole tile rows along dim 0, about kVerifyStagingBytes each.
    int64_t row_bytes = esize;
    for (int d = 1; d < chunk.rank(); ++d) row_bytes *= chunk.shape()[d];
    const int64_t tile_rows = grid.tile_shape()[0];
    const int64_t tile_row_bytes = std::max<int64_t>(row_bytes * tile_rows, 1);
    const int64_t step =
        tile_rows * std::max<int64_t>(kVerifyStagingBytes / tile_row_bytes, 1);
    for (int64_t r = 0; r < chunk.shape()[0]; r += step) {
      std::vector<int64_t> origin(chunk.rank(), 0), shape = chunk.shape();
      origin[0] = r;
      shape[0] = std::min(step, chunk.shape()[0] - r);
      const Box slab = Box::Unchecked(origin, shape);  // Chunk coordinates.
      std::vector<std::string> slab_problems;
      MESHCKPT_ASSIGN_OR_RETURN(bool ok,
                                read(Shifted(slab, chunk.origin()), &slab_problems));
      if (ok) continue;
      // Something in the slab is bad: find every bad tile, so the report is
      // complete rather than stopping at the first.
      std::vector<std::string> tile_problems;
      for (int64_t tile : grid.TilesIn(slab)) {
        MESHCKPT_ASSIGN_OR_RETURN(
            bool tile_ok,
            read(Shifted(grid.TileBox(tile), chunk.origin()), &tile_problems));
        (void)tile_ok;
      }
      // A failure no single tile reproduces (e.g. a read error of the large
      // read) is still a problem.
      const std::vector<std::string>& found = tile_problems.empty() ? slab_problems
                                                                    : tile_problems;
      problems->insert(problems->end(), found.begin(), found.end());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CheckpointReader::VerifyAll(
    std::vector<std::string>* skipped) const {
  if (skipped != nullptr) {
    for (const UnreadableTensor& u : checkpoint_->unreadable()) skipped->push_back(u.key);
  }
  std::vector<const CheckpointIndex::Tensor*> tensors;
  for (const CheckpointIndex::Tensor& t : checkpoint_->index().tensors()) {
    tensors.push_back(&t);
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const CheckpointIndex::Tensor* a, const CheckpointIndex::Tensor* b) {
              return a->key < b->key;
            });
  std::vector<std::string> problems;
  for (const CheckpointIndex::Tensor* t : tensors) {
    MESHCKPT_RETURN_IF_ERROR(VerifyTensor(*t, &problems));
  }
  return problems;
}

}  // namespace meshckpt
