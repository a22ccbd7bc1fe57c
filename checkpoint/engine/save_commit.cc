// The end of a save: rank reports, the index, the commit.
#include "meshckpt/checkpoint/engine/save_commit.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/base/version.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"
#include "meshckpt/io/format/fixed64.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt::internal {
// Per chunk: tensor, writer rank, rank of the box, origin, shape, tile
// shape, number of checksums, checksums, then whether its file location is
// known and, if so, its offset and storage shape.
std::string EncodeReportChunks(const RankReport& report) {
  std::string out;
  for (const WrittenChunk& c : report.chunks) {
    const ChunkRecord& r = c.record;
    AppendFixed64(&out, c.dataset);
    AppendFixed64(&out, static_cast<uint64_t>(r.writer_rank));
    AppendFixed64(&out, r.box.rank());
    for (int64_t v : r.box.origin()) AppendFixed64(&out, v);
    for (int64_t v : r.box.shape()) AppendFixed64(&out, v);
    for (int64_t v : r.tile_shape) AppendFixed64(&out, v);
    AppendFixed64(&out, r.tile_checksums.size());
    for (uint64_t v : r.tile_checksums) AppendFixed64(&out, v);
    AppendFixed64(&out, r.file_offset.has_value() ? 1 : 0);
    if (!r.file_offset.has_value()) continue;
    AppendFixed64(&out, static_cast<uint64_t>(*r.file_offset));
    AppendFixed64(&out, r.storage_shape.size());
    for (int64_t v : r.storage_shape) AppendFixed64(&out, v);
  }
  return out;
}

absl::StatusOr<std::vector<WrittenChunk>> DecodeReportChunks(absl::string_view in,
                                                             size_t plan_size) {
  std::vector<WrittenChunk> chunks;
  auto bad = [] { return absl::InternalError("malformed chunk report from a rank"); };
  while (!in.empty()) {
    if (in.size() < 24) return bad();
    WrittenChunk& c = chunks.emplace_back();
    c.dataset = ConsumeFixed64(&in);
    c.record.writer_rank = static_cast<int>(ConsumeFixed64(&in));
    const uint64_t rank = ConsumeFixed64(&in);
    if (c.dataset >= plan_size || rank > in.size() / 24) return bad();
    std::vector<int64_t> origin(rank), shape(rank);
    for (int64_t& v : origin) v = static_cast<int64_t>(ConsumeFixed64(&in));
    for (int64_t& v : shape) v = static_cast<int64_t>(ConsumeFixed64(&in));
    absl::StatusOr<Box> box = Box::Create(std::move(origin), std::move(shape));
    if (!box.ok()) return bad();
    c.record.box = *std::move(box);
    c.record.tile_shape.resize(rank);
    for (int64_t& v : c.record.tile_shape) v = static_cast<int64_t>(ConsumeFixed64(&in));
    if (in.size() < 8) return bad();
    const uint64_t n = ConsumeFixed64(&in);
    if (n > in.size() / 8) return bad();
    c.record.tile_checksums.resize(n);
    for (uint64_t& v : c.record.tile_checksums) v = ConsumeFixed64(&in);
    if (in.size() < 8) return bad();
    if (ConsumeFixed64(&in) == 0) continue;
    if (in.size() < 16) return bad();
    c.record.file_offset = static_cast<int64_t>(ConsumeFixed64(&in));
    const uint64_t storage_rank = ConsumeFixed64(&in);
    if (storage_rank > in.size() / 8) return bad();
    c.record.storage_shape.resize(storage_rank);
    for (int64_t& v : c.record.storage_shape)
      v = static_cast<int64_t>(ConsumeFixed64(&in));
  }
  return chunks;
}

absl::StatusOr<IndexRecord> BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& chunk_reports,
                                       const CheckpointContents& contents) {
  IndexRecord index(mesh);
  index.tensors.reserve(plan.size());
  for (const PlannedTensor& p : plan) {
    index.tensors.emplace_back(p.tensor->key, p.dataset, p.tensor->dtype, p.tensor->shape,
                               p.tensor->layout);
  }
  for (const std::string& r : chunk_reports) {
    MESHCKPT_ASSIGN_OR_RETURN(std::vector<WrittenChunk> chunks,
                              DecodeReportChunks(r, plan.size()));
    for (WrittenChunk& c : chunks) {
      index.tensors[c.dataset].chunks.push_back(std::move(c.record));
    }
  }
  for (TensorRecord& t : index.tensors) {
    std::sort(t.chunks.begin(), t.chunks.end(),
              [](const ChunkRecord& a, const ChunkRecord& b) {
                return a.box.origin() < b.box.origin();
              });
  }
  index.object_graph = contents.object_graph;
  index.user_metadata = contents.user_metadata;
  index.save_counter = contents.save_counter;
  index.step = contents.step;
  index.timestamp = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  index.library_version = kLibraryVersion;
  return index;
}

absl::Status Commit(const std::string& prefix, const std::string& partial,
                    IndexRecord index) {
  const std::string data = DataFilePath(prefix), index_path = IndexFilePath(prefix);
  MESHCKPT_ASSIGN_OR_RETURN(int64_t size, FileSize(partial));
  index.data_file = Basename(data);
  index.data_file_size = size;
  // An older checkpoint at this prefix stops existing before its data file is
  // replaced, so a crash cannot pair its index with the new data.
  if (FileExists(index_path)) {
    MESHCKPT_RETURN_IF_ERROR(RemoveFileIfExists(index_path));
    MESHCKPT_RETURN_IF_ERROR(SyncParentDir(index_path));
  }
  MESHCKPT_RETURN_IF_ERROR(RenameFile(partial, data));
  MESHCKPT_RETURN_IF_ERROR(SyncParentDir(data));
  MESHCKPT_FAULT_POINT("after_data_rename", 0);  // Commit runs on rank 0.
  return WriteFileAtomically(index_path, EncodeIndexFile(index));
}

}  // namespace meshckpt::internal
