#include "checkpoint/engine/checkpoint_index.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "checkpoint/engine/shard_io.h"
#include "io/format/checksum.h"
#include "io/fs/fs.h"
#include "io/format/index_file.h"
#include "layout/reshard_plan.h"
#include "proto/convert.h"

namespace meshckpt {
namespace {

absl::Status Bad(const std::string& path, absl::string_view key,
                 absl::string_view what) {
  return absl::DataLossError(absl::StrCat("index file '", path, "', tensor '",
                                          key, "': ", what));
}

absl::Status CheckChunk(const std::string& path, const CheckpointIndex::Tensor& t,
                        const proto::ChunkProto& c, const Box& box) {
  if (c.tile_shape_size() != box.rank()) {
    return Bad(path, t.key, absl::StrCat("chunk ", box.ToString(),
                                         " has a tile shape of the wrong rank"));
  }
  std::vector<int64_t> tile(c.tile_shape().begin(), c.tile_shape().end());
  for (int d = 0; d < box.rank(); ++d) {
    if (tile[d] < 1 || tile[d] > std::max<int64_t>(box.shape()[d], 1)) {
      return Bad(path, t.key, absl::StrCat("chunk ", box.ToString(),
                                           " has a bad tile shape"));
    }
  }
  if (t.dtype == DType::kString && tile != box.shape()) {
    return Bad(path, t.key, "string chunks must be a single tile");
  }
  TileGrid grid(box.shape(), tile);
  if (grid.num_tiles() != c.tile_checksums_size()) {
    return Bad(path, t.key,
               absl::StrCat("chunk ", box.ToString(), " has ",
                            c.tile_checksums_size(), " checksums for ",
                            grid.num_tiles(), " tiles"));
  }
  return absl::OkStatus();
}

// The chunk's file location (ChunkProto.file_offset), checked to lie inside
// the data file; nullopt when the index gives none.
absl::StatusOr<std::optional<StorageBlock>> ChunkStorage(
    const std::string& path, const CheckpointIndex::Tensor& t,
    const proto::ChunkProto& c, const Box& box, int64_t data_file_size) {
  if (!c.has_file_offset()) {
    if (c.storage_shape_size() != 0) {
      return Bad(path, t.key, absl::StrCat("chunk ", box.ToString(),
                                           " has a storage shape but no offset"));
    }
    return std::optional<StorageBlock>();
  }
  auto bad = [&](absl::string_view what) {
    return Bad(path, t.key, absl::StrCat("chunk ", box.ToString(), " ", what));
  };
  const int64_t esize = DTypeSize(t.dtype);
  if (esize == 0) return bad("is a string chunk with a file offset");
  if (c.storage_shape_size() != box.rank()) return bad("has a storage shape of the wrong rank");
  std::vector<int64_t> storage(c.storage_shape().begin(), c.storage_shape().end());
  for (int d = 0; d < box.rank(); ++d) {
    if (storage[d] < box.shape()[d] || storage[d] < 1) {
      return bad("is larger than its storage shape");
    }
  }
  absl::StatusOr<int64_t> n = CheckedNumElements(storage);
  if (!n.ok() || *n > std::numeric_limits<int64_t>::max() / esize) return bad("has an absurd storage shape");
  // Bytes from the chunk's first element to just past its last.
  int64_t last = 0;
  for (int d = 0; d < box.rank(); ++d) {
    last = last * storage[d] + std::max<int64_t>(box.shape()[d] - 1, 0);
  }
  const int64_t span = (last + 1) * esize;
  if (c.file_offset() < 0 || c.file_offset() > data_file_size - span) {
    return bad(absl::StrCat("lies at bytes [", c.file_offset(), ", +", span,
                            ") outside the data file of ", data_file_size, " bytes"));
  }
  return std::optional<StorageBlock>(StorageBlock{box.origin(), storage, c.file_offset()});
}

}  // namespace

absl::StatusOr<CheckpointIndex> CheckpointIndex::FromProto(
    proto::CheckpointIndexProto proto, std::string path) {
  absl::StatusOr<Mesh> mesh = MeshFromProto(proto.mesh());
  if (!mesh.ok()) {
    return absl::DataLossError(absl::StrCat("index file '", path,
                                            "' has a bad mesh: ",
                                            mesh.status().message()));
  }
  CheckpointIndex index(std::move(proto), std::move(path), *std::move(mesh));
  const std::string& p = index.path_;
  for (int i = 0; i < index.proto_.tensors_size(); ++i) {
    const proto::TensorEntryProto& e = index.proto_.tensors(i);
    if (e.key().empty() || e.dataset().empty()) {
      return Bad(p, e.key(), "empty key or dataset path");
    }
    absl::StatusOr<DType> dtype = DTypeFromProto(e.dtype());
    if (!dtype.ok()) return Bad(p, e.key(), dtype.status().message());
    std::vector<int64_t> shape(e.shape().begin(), e.shape().end());
    if (absl::Status s = CheckedNumElements(shape).status(); !s.ok()) {
      return Bad(p, e.key(), s.message());
    }
    absl::StatusOr<Layout> layout = LayoutFromProto(e.layout(), index.mesh_);
    if (!layout.ok()) return Bad(p, e.key(), layout.status().message());
    if (layout->rank() != static_cast<int>(shape.size())) {
      return Bad(p, e.key(), "layout rank differs from shape rank");
    }
    Tensor t{e.key(), e.dataset(), *dtype, shape, *std::move(layout), {}, {}, i};
    for (const proto::ChunkProto& c : e.chunks()) {
      absl::StatusOr<Box> box = ChunkBoxFromProto(c);
      if (!box.ok()) return Bad(p, e.key(), box.status().message());
      t.chunks.push_back(*std::move(box));
    }
    if (absl::Status s = ValidateChunkCover(Box::FromShape(shape), t.chunks);
        !s.ok()) {
      return Bad(p, e.key(), s.message());
    }
    for (int c = 0; c < e.chunks_size(); ++c) {
      MESHCKPT_RETURN_IF_ERROR(CheckChunk(p, t, e.chunks(c), t.chunks[c]));
      MESHCKPT_ASSIGN_OR_RETURN(
          std::optional<StorageBlock> storage,
          ChunkStorage(p, t, e.chunks(c), t.chunks[c], index.proto_.data_file_size()));
      t.storage.push_back(std::move(storage));
    }
    if (!index.by_key_.emplace(t.key, static_cast<int>(index.tensors_.size()))
             .second) {
      return Bad(p, e.key(), "key appears twice");
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
    absl::StatusOr<std::string> bytes = ReadIndexFileBytes(path);
    if (bytes.ok()) {
      payload = *std::move(bytes);
    } else if (absl::IsNotFound(bytes.status())) {
      local = absl::NotFoundError(absl::StrCat(
          "no checkpoint at '", prefix, "' (index file '", path,
          "' does not exist)"));
    } else {
      local = bytes.status();
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  comm.Broadcast(&payload, 0);
  MESHCKPT_ASSIGN_OR_RETURN(proto::CheckpointIndexProto proto,
                            DecodeIndexFile(payload, path));
  return FromProto(std::move(proto), path);
}

const CheckpointIndex::Tensor* CheckpointIndex::Find(absl::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace meshckpt
