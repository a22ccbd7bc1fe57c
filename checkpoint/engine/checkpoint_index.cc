// CheckpointIndex: reading, checking and looking up a checkpoint's index.
#include "meshckpt/checkpoint/engine/checkpoint_index.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/reshard_plan.h"

namespace meshckpt {
namespace {

// Constant-initialized: counting costs no start-up work.
std::atomic<int64_t> index_reads{0};

absl::Status Bad(const std::string& path, absl::string_view key, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("index file '", path, "', tensor '", key, "': ", what));
}

absl::Status CheckChunk(const std::string& path, const CheckpointIndex::Tensor& t,
                        const ChunkRecord& c, const Box& box) {
  if (static_cast<int>(c.tile_shape.size()) != box.rank()) {
    return Bad(
        path, t.key,
        absl::StrCat("chunk ", box.ToString(), " has a tile shape of the wrong rank"));
  }
  const std::vector<int64_t>& tile = c.tile_shape;
  for (int d = 0; d < box.rank(); ++d) {
    if (tile[d] < 1 || tile[d] > std::max<int64_t>(box.shape()[d], 1)) {
      return Bad(path, t.key,
                 absl::StrCat("chunk ", box.ToString(), " has a bad tile shape"));
    }
  }
  if (t.dtype == DType::kString && tile != box.shape()) {
    return Bad(path, t.key, "string chunks must be a single tile");
  }
  TileGrid grid(box.shape(), tile);
  if (grid.num_tiles() != static_cast<int64_t>(c.tile_checksums.size())) {
    return Bad(path, t.key,
               absl::StrCat("chunk ", box.ToString(), " has ", c.tile_checksums.size(),
                            " checksums for ", grid.num_tiles(), " tiles"));
  }
  return absl::OkStatus();
}

// The chunk's file location (ChunkRecord::file_offset), checked to lie inside
// the data file; nullopt when the index gives none.
absl::StatusOr<std::optional<StorageBlock>> ChunkStorage(const std::string& path,
                                                         const CheckpointIndex::Tensor& t,
                                                         const ChunkRecord& c,
                                                         const Box& box,
                                                         int64_t data_file_size) {
  if (!c.file_offset.has_value()) {
    if (!c.storage_shape.empty()) {
      return Bad(
          path, t.key,
          absl::StrCat("chunk ", box.ToString(), " has a storage shape but no offset"));
    }
    return std::optional<StorageBlock>();
  }
  auto bad = [&](absl::string_view what) {
    return Bad(path, t.key, absl::StrCat("chunk ", box.ToString(), " ", what));
  };
  const int64_t esize = DTypeSize(t.dtype);
  if (esize == 0) return bad("is a string chunk with a file offset");
  if (static_cast<int>(c.storage_shape.size()) != box.rank()) {
    return bad("has a storage shape of the wrong rank");
  }
  const std::vector<int64_t>& storage = c.storage_shape;
  for (int d = 0; d < box.rank(); ++d) {
    if (storage[d] < box.shape()[d] || storage[d] < 1) {
      return bad("is larger than its storage shape");
    }
  }
  absl::StatusOr<int64_t> n = CheckedNumElements(storage);
  if (!n.ok() || *n > std::numeric_limits<int64_t>::max() / esize)
    return bad("has an absurd storage shape");
  // Bytes from the chunk's first element to just past its last.
  int64_t last = 0;
  for (int d = 0; d < box.rank(); ++d) {
    last = last * storage[d] + std::max<int64_t>(box.shape()[d] - 1, 0);
  }
  const int64_t span = (last + 1) * esize;
  const int64_t offset = *c.file_offset;
  if (offset < 0 || offset > data_file_size - span) {
    return bad(absl::StrCat("lies at bytes [", offset, ", +", span,
                            ") outside the data file of ", data_file_size, " bytes"));
  }
  return std::optional<StorageBlock>(StorageBlock{box.origin(), storage, offset});
}

}  // namespace

absl::StatusOr<CheckpointIndex> CheckpointIndex::FromRecord(IndexRecord record,
                                                            std::string path) {
  CheckpointIndex index(std::move(record), std::move(path));
  const std::string& p = index.path_;
  const int64_t data_file_size = index.record_.data_file_size;
  index.tensors_.reserve(index.record_.tensors.size());
  for (size_t i = 0; i < index.record_.tensors.size(); ++i) {
    const TensorRecord& e = index.record_.tensors[i];
    if (e.key.empty() || e.dataset.empty()) {
      return Bad(p, e.key, "empty key or dataset path");
    }
    if (absl::Status s = CheckedNumElements(e.shape).status(); !s.ok()) {
      return Bad(p, e.key, s.message());
    }
    if (e.layout.rank() != static_cast<int>(e.shape.size())) {
      return Bad(p, e.key, "layout rank differs from shape rank");
    }
    Tensor t{e.key, e.dataset, e.dtype, e.shape, e.layout, {}, {}, static_cast<int>(i)};
    t.chunks.reserve(e.chunks.size());
    for (const ChunkRecord& c : e.chunks) t.chunks.push_back(c.box);
    if (absl::Status s = ValidateChunkCover(Box::FromShape(e.shape), t.chunks); !s.ok()) {
      return Bad(p, e.key, s.message());
    }
    for (size_t c = 0; c < e.chunks.size(); ++c) {
      MESHCKPT_RETURN_IF_ERROR(CheckChunk(p, t, e.chunks[c], t.chunks[c]));
      MESHCKPT_ASSIGN_OR_RETURN(
          std::optional<StorageBlock> storage,
          ChunkStorage(p, t, e.chunks[c], t.chunks[c], data_file_size));
      t.storage.push_back(std::move(storage));
    }
    if (!index.by_key_.emplace(t.key, static_cast<int>(index.tensors_.size())).second) {
      return Bad(p, e.key, "key appears twice");
    }
    index.tensors_.push_back(std::move(t));
  }
  return index;
}

absl::StatusOr<CheckpointIndex> CheckpointIndex::Read(Communicator& comm,
                                                      const std::string& prefix) {
  const std::string path = IndexFilePath(prefix);
  // Rank 0 reads; the bytes (or the error) go to everyone so all decode the
  // same thing.
  std::string payload;
  absl::Status local;
  if (comm.rank() == 0) {
    index_reads.fetch_add(1, std::memory_order_relaxed);
    absl::StatusOr<std::string> bytes = ReadIndexFileBytes(path);
    if (bytes.ok()) {
      payload = *std::move(bytes);
    } else if (absl::IsNotFound(bytes.status())) {
      local = absl::NotFoundError(absl::StrCat(
          "no checkpoint at '", prefix, "' (index file '", path, "' does not exist)"));
    } else {
      local = bytes.status();
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  comm.Broadcast(&payload, 0);
  MESHCKPT_ASSIGN_OR_RETURN(IndexRecord record, DecodeIndexFile(payload, path));
  return FromRecord(std::move(record), path);
}

const CheckpointIndex::Tensor* CheckpointIndex::Find(absl::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &tensors_[it->second];
}

int64_t internal::IndexReadsForTesting() {
  return index_reads.load(std::memory_order_relaxed);
}

}  // namespace meshckpt
