// TfCheckpoint: a TensorBundle as a CheckpointIndex, read box by box, its
// CRC32Cs checked in parts spread over the ranks.
#include "meshckpt/checkpoint/engine/tf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/layout/region.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "meshckpt/tfbundle/slice_key.h"

namespace meshckpt::internal {
namespace {

// Bytes a rank checksums per read while verifying its part of an entry.
constexpr int64_t kVerifyPieceBytes = int64_t{1} << 20;

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Keys that are not tensors of their own: the object graph, and the
// entries holding the slices of partitioned tensors.
std::set<std::string> HiddenKeys(const tf::BundleReader& reader) {
  std::set<std::string> hidden = {tf::kObjectGraphKey};
  for (const tf::BundleEntry& e : reader.entries()) {
    for (const tf::TensorSliceSpec& spec : e.slices()) {
      hidden.insert(tf::EncodeTensorNameSlice(e.key(), spec));
    }
  }
  return hidden;
}

// Elements [begin, end) of `n` that rank `r` of `p` checksums: contiguous
// parts in rank order, sizes differing by at most one.
std::pair<int64_t, int64_t> PartOf(int64_t n, int r, int p) {
  const int64_t q = n / p, extra = n % p;
  const int64_t begin = q * r + std::min<int64_t>(r, extra);
  return {begin, begin + q + (r < extra ? 1 : 0)};
}

}  // namespace

TfCheckpoint::TfCheckpoint(std::unique_ptr<tf::BundleReader> reader)
    : reader_(std::move(reader)) {}

TfCheckpoint::~TfCheckpoint() = default;

absl::StatusOr<std::unique_ptr<TfCheckpoint>> TfCheckpoint::Open(
    Communicator& comm, const std::string& prefix) {
  absl::StatusOr<std::unique_ptr<tf::BundleReader>> reader =
      tf::BundleReader::Open(prefix);
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(reader.status()));
  std::unique_ptr<TfCheckpoint> ckpt(new TfCheckpoint(*std::move(reader)));
  const std::set<std::string> hidden = HiddenKeys(*ckpt->reader_);
  const std::string index_file = tf::IndexFilename(ckpt->reader_->prefix());
  for (const tf::BundleEntry& e : ckpt->reader_->entries()) {
    if (hidden.count(e.key()) > 0) continue;
    if (!DTypeFromTf(e.dtype_value(), e.key(), index_file).ok()) {
      ckpt->unreadable_.push_back(
          {e.key(), std::string(tf::TfDTypeName(e.dtype_value())), e.shape()});
    }
  }
  return ckpt;
}

absl::StatusOr<CheckpointIndex> TfCheckpoint::BuildIndex() const {
  const tf::BundleHeader& header = reader_->header();
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  IndexRecord record(mesh);
  const std::string index_file = tf::IndexFilename(reader_->prefix());
  record.data_file = BaseName(tf::DataFilename(reader_->prefix(), 0, header.num_shards));
  record.library_version =
      absl::StrCat("TensorFlow TensorBundle V2 (producer ", header.producer, ")");
  const std::set<std::string> hidden = HiddenKeys(*reader_);
  for (const tf::BundleEntry& e : reader_->entries()) {
    if (hidden.count(e.key()) > 0) continue;
    absl::StatusOr<DType> dtype = DTypeFromTf(e.dtype_value(), e.key(), index_file);
    if (!dtype.ok()) continue;  // Listed in unreadable().
    const int rank = static_cast<int>(e.shape().size());
    // The dataset is the key: what `meshckpt reshard` names DST's datasets.
    TensorRecord t(e.key(), e.key(), *dtype, e.shape(), Layout::Replicated(mesh, rank));
    if (e.num_elements() > 0) {
      // One chunk, one tile: the entry's CRC32C covers it whole.
      ChunkRecord c;
      c.box = Box::FromShape(e.shape());
      c.tile_shape = e.shape();
      c.tile_checksums = {tf::crc32c::Unmask(e.masked_crc32c())};
      t.chunks.push_back(std::move(c));
    }
    record.tensors.push_back(std::move(t));
  }
  if (reader_->Find(tf::kObjectGraphKey) != nullptr) {
    MESHCKPT_ASSIGN_OR_RETURN(std::string serialized,
                              tf::ReadSerializedObjectGraph(*reader_));
    MESHCKPT_ASSIGN_OR_RETURN(tf::ObjectGraph graph,
                              tf::ObjectGraph::Parse(serialized, index_file));
    record.object_graph = ObjectGraphFromTf(graph);
    record.user_metadata[kTfObjectGraphMetadataKey] = std::move(serialized);
  }
  return CheckpointIndex::FromRecord(std::move(record), index_file);
}

absl::Status TfCheckpoint::CheckReadable(absl::string_view key) const {
  for (const UnreadableTensor& u : unreadable_) {
    if (u.key != key) continue;
    const tf::BundleEntry* e = reader_->Find(key);
    absl::Status s =
        DTypeFromTf(e->dtype_value(), key, tf::IndexFilename(reader_->prefix())).status();
    return absl::UnimplementedError(absl::StrCat(
        s.message(),
        " (DT_VARIANT and DT_RESOURCE values need TensorFlow's own decoders; the "
        "entry is listed only)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> TfCheckpoint::data_files() const {
  std::vector<std::string> out;
  const int n = reader_->header().num_shards;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(tf::DataFilename(reader_->prefix(), i, n));
  return out;
}

bool TfCheckpoint::ReadWhole(absl::string_view key) const {
  const tf::BundleEntry* e = reader_->Find(key);
  return e->dtype() == tf::TfDType::kString || !e->slices().empty();
}

absl::Status TfCheckpoint::VerifyOnce(absl::string_view key) {
  if (verified_.count(std::string(key)) > 0) return absl::OkStatus();
  MESHCKPT_RETURN_IF_ERROR(reader_->VerifyEntry(key));
  verified_.insert(std::string(key));
  return absl::OkStatus();
}

absl::Status TfCheckpoint::VerifyTensor(const CheckpointIndex::Tensor& t) {
  MESHCKPT_RETURN_IF_ERROR(reader_->VerifyEntry(t.key));
  verified_.insert(t.key);
  return absl::OkStatus();
}

absl::Status TfCheckpoint::ReadBox(const CheckpointIndex::Tensor& t, const Box& box,
                                   void* out, bool verify) {
  if (box.empty()) return absl::OkStatus();
  const Box whole = Box::FromShape(t.shape);
  if (ReadWhole(t.key) || (verify && box == whole)) {
    // ReadTensor checks the CRC32C as it reads: one pass for the whole.
    MESHCKPT_ASSIGN_OR_RETURN(tf::TensorValue v, reader_->ReadTensor(t.key));
    verified_.insert(t.key);
    if (t.dtype == DType::kString) {
      CopyRegionOf(v.strings().data(), t.shape, box, static_cast<std::string*>(out),
                   box.shape(), Box::FromShape(box.shape()));
    } else {
      CopyRegion(v.bytes().data(), t.shape, box, out, box.shape(),
                 Box::FromShape(box.shape()), DTypeSize(t.dtype));
    }
    return absl::OkStatus();
  }
  if (verify) MESHCKPT_RETURN_IF_ERROR(VerifyOnce(t.key));
  const size_t bytes = static_cast<size_t>(box.num_elements() * DTypeSize(t.dtype));
  return reader_->ReadBox(t.key, box.origin(), box.shape(),
                          absl::MakeSpan(static_cast<char*>(out), bytes));
}

absl::Status TfCheckpoint::VerifyShared(Communicator& comm,
                                        const std::vector<std::string>& keys) {
  const int p = comm.size(), r = comm.rank();
  if (reader_->header().big_endian) {
    // Partial reads come back byte-swapped, so CRCs of parts would not be
    // the stored bytes': every rank checks whole entries instead (rare:
    // only big-endian machines write these).
    absl::Status local;
    for (const std::string& key : keys) {
      local = VerifyOnce(key);
      if (!local.ok()) break;
    }
    return comm.Agree(local);
  }
  // This rank's part of each entry, checksummed; 4 bytes per key.
  std::string mine;
  absl::Status local;
  std::vector<char> buffer;
  for (const std::string& key : keys) {
    const tf::BundleEntry* e = reader_->Find(key);
    const int64_t elem = tf::TfDTypeSize(e->dtype());
    const auto [begin, end] = PartOf(e->num_elements(), r, p);
    const int64_t piece = std::max<int64_t>(1, kVerifyPieceBytes / elem) * elem;
    uint32_t crc = 0;
    for (int64_t at = begin * elem; at < end * elem && local.ok(); at += piece) {
      const int64_t n = std::min(piece, end * elem - at);
      buffer.resize(static_cast<size_t>(n));
      local = reader_->ReadBytes(key, at, absl::MakeSpan(buffer));
      if (local.ok()) crc = tf::crc32c::Extend(crc, buffer.data(), buffer.size());
    }
    if (!local.ok()) break;
    for (int i = 0; i < 4; ++i) mine.push_back(static_cast<char>(crc >> (8 * i)));
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  const std::vector<std::string> all = comm.AllGather(mine);
  // Every rank combines the same parts in rank order: the same verdict,
  // and the same message, everywhere.
  for (size_t k = 0; k < keys.size(); ++k) {
    const tf::BundleEntry* e = reader_->Find(keys[k]);
    const int64_t elem = tf::TfDTypeSize(e->dtype());
    uint32_t crc = 0;
    for (int q = 0; q < p; ++q) {
      uint32_t part = 0;
      for (int i = 0; i < 4; ++i) {
        part |= uint32_t{static_cast<unsigned char>(all[q][4 * k + i])} << (8 * i);
      }
      const auto [begin, end] = PartOf(e->num_elements(), q, p);
      crc = tf::crc32c::Combine(crc, part, static_cast<uint64_t>((end - begin) * elem));
    }
    const uint32_t expected = tf::crc32c::Unmask(e->masked_crc32c());
    if (crc != expected) {
      return absl::DataLossError(
          absl::StrFormat("tensor '%s' in '%s', bytes [%d, +%d): checksum mismatch "
                          "(stored %08x, computed "
                          "%08x)",
                          keys[k],
                          tf::DataFilename(reader_->prefix(), e->shard_id(),
                                           reader_->header().num_shards),
                          e->offset(), e->size(), expected, crc));
    }
    verified_.insert(keys[k]);
  }
  return absl::OkStatus();
}

absl::Status TfCheckpoint::VerifyRequested(Communicator& comm,
                                           const CheckpointIndex& index,
                                           absl::Span<const RestoreTensor> tensors) {
  std::vector<std::string> keys;
  keys.reserve(tensors.size());
  for (const RestoreTensor& t : tensors) keys.push_back(t.key);
  return VerifyKeys(comm, index, keys);
}

absl::Status TfCheckpoint::VerifyKeys(Communicator& comm, const CheckpointIndex& index,
                                      absl::Span<const std::string> keys) {
  // The list is the same on every rank (the caller agreed on it), so every
  // rank verifies the same keys in the same order.
  std::vector<std::string> shared;
  std::set<std::string> seen;
  for (const std::string& key : keys) {
    const CheckpointIndex::Tensor* saved = index.Find(key);
    if (ReadWhole(key) || Box::FromShape(saved->shape).empty() ||
        !seen.insert(key).second) {
      continue;
    }
    shared.push_back(key);
  }
  return VerifyShared(comm, shared);
}

absl::Status TfCheckpoint::Read(const CheckpointIndex& index,
                                absl::Span<const RestoreTensor> tensors,
                                const IoOptions& options) {
  int64_t total = 0, done = 0;
  std::vector<LocalBuffers> buffers;
  buffers.reserve(tensors.size());
  for (const RestoreTensor& t : tensors) {
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();  // Checked.
    buffers.push_back(LocalBuffersOf(map, t.device_data, t.shard_data));
    for (const auto& s : buffers.back().shards) {
      total += s.box.num_elements() * DTypeSize(t.dtype);
    }
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RestoreTensor& t = tensors[i];
    const CheckpointIndex::Tensor& saved = *index.Find(t.key);
    const LocalBuffers& b = buffers[i];
    // Strings and partitioned tensors: read whole (CRC checked) once by
    // the ranks that hold any of them.
    if (ReadWhole(t.key) && !b.shards.empty()) {
      MESHCKPT_ASSIGN_OR_RETURN(tf::TensorValue v, reader_->ReadTensor(t.key));
      for (const LocalBuffers::Shard& s : b.shards) {
        if (t.dtype == DType::kString) {
          CopyRegionOf(v.strings().data(), t.shape, s.box,
                       static_cast<std::string*>(s.data), s.box.shape(),
                       Box::FromShape(s.box.shape()));
        } else {
          CopyRegion(v.bytes().data(), t.shape, s.box, s.data, s.box.shape(),
                     Box::FromShape(s.box.shape()), DTypeSize(t.dtype));
        }
      }
    } else {
      for (const LocalBuffers::Shard& s : b.shards) {
        MESHCKPT_RETURN_IF_ERROR(ReadBox(saved, s.box, s.data, /*verify=*/false));
      }
    }
    for (const LocalBuffers::Shard& s : b.shards) {
      done += s.box.num_elements() * DTypeSize(t.dtype);
      if (options.progress) options.progress(done, total);
    }
    FillCopies(b, t.dtype);
  }
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
