// The end of a save: rank reports, string datasets, the index, the commit.
#include "checkpoint/engine/save_commit.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "base/version.h"
#include "checkpoint/engine/fault_injection.h"
#include "io/format/checksum.h"
#include "io/transfer/data_file.h"
#include "io/fs/fs.h"
#include "io/format/index_file.h"

namespace meshckpt::internal {
namespace {

void AppendU64(std::string* out, uint64_t v) {
  for (int b = 0; b < 8; ++b) out->push_back(static_cast<char>(v >> (8 * b)));
}

uint64_t ReadU64(absl::string_view* in) {
  uint64_t v = 0;
  for (int b = 0; b < 8; ++b) {
    v |= uint64_t{static_cast<unsigned char>((*in)[b])} << (8 * b);
  }
  in->remove_prefix(8);
  return v;
}

}  // namespace

ChunkRecord* AddChunk(RankReport* report, size_t tensor, const Box& box, int rank) {
  ChunkRecord& c = report->chunks.emplace_back(RankReport::Chunk{tensor, {}}).record;
  c.box = box;
  c.writer_rank = rank;
  return &c;
}

// Per chunk: tensor, writer rank, rank of the box, origin, shape, tile
// shape, number of checksums, checksums. Offsets are added by rank 0.
std::string EncodeReportChunks(const RankReport& report) {
  std::string out;
  for (const RankReport::Chunk& c : report.chunks) {
    const ChunkRecord& r = c.record;
    AppendU64(&out, c.tensor);
    AppendU64(&out, static_cast<uint64_t>(r.writer_rank));
    AppendU64(&out, r.box.rank());
    for (int64_t v : r.box.origin()) AppendU64(&out, v);
    for (int64_t v : r.box.shape()) AppendU64(&out, v);
    for (int64_t v : r.tile_shape) AppendU64(&out, v);
    AppendU64(&out, r.tile_checksums.size());
    for (uint64_t v : r.tile_checksums) AppendU64(&out, v);
  }
  return out;
}

absl::StatusOr<std::vector<RankReport::Chunk>> DecodeReportChunks(absl::string_view in,
                                                                  size_t plan_size) {
  std::vector<RankReport::Chunk> chunks;
  auto bad = [] { return absl::InternalError("malformed chunk report from a rank"); };
  while (!in.empty()) {
    if (in.size() < 24) return bad();
    RankReport::Chunk& c = chunks.emplace_back();
    c.tensor = ReadU64(&in);
    c.record.writer_rank = static_cast<int>(ReadU64(&in));
    const uint64_t rank = ReadU64(&in);
    if (c.tensor >= plan_size || rank > in.size() / 24) return bad();
    std::vector<int64_t> origin(rank), shape(rank);
    for (int64_t& v : origin) v = static_cast<int64_t>(ReadU64(&in));
    for (int64_t& v : shape) v = static_cast<int64_t>(ReadU64(&in));
    absl::StatusOr<Box> box = Box::Create(std::move(origin), std::move(shape));
    if (!box.ok()) return bad();
    c.record.box = *std::move(box);
    c.record.tile_shape.resize(rank);
    for (int64_t& v : c.record.tile_shape) v = static_cast<int64_t>(ReadU64(&in));
    if (in.size() < 8) return bad();
    const uint64_t n = ReadU64(&in);
    if (n > in.size() / 8) return bad();
    c.record.tile_checksums.resize(n);
    for (uint64_t& v : c.record.tile_checksums) v = ReadU64(&in);
  }
  return chunks;
}

// Payload: [tensor index][shard][count] then count x ([len][bytes]).
void AddStringChunk(RankReport* report, size_t tensor, const PlannedTensor& p,
                    const ShardWriter& w, int rank) {
  const auto* strings = static_cast<const std::string*>(WriterData(p, w));
  const int64_t n = w.box.num_elements();
  ChunkRecord* c = AddChunk(report, tensor, w.box, rank);
  c->tile_shape = w.box.shape();
  c->tile_checksums.push_back(HashStrings(strings, n));
  std::string* out = &report->strings;
  AppendU64(out, tensor);
  AppendU64(out, w.shard);
  AppendU64(out, n);
  for (int64_t i = 0; i < n; ++i) {
    AppendU64(out, strings[i].size());
    out->append(strings[i]);
  }
}

RankReport BuildReport(int rank, const std::vector<PlannedTensor>& plan,
                       int64_t tile_bytes) {
  RankReport report;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    for (const ShardWriter& w : p.writers) {
      if (w.rank != rank) continue;
      if (p.element_size == 0) {
        AddStringChunk(&report, i, p, w, rank);
        continue;
      }
      ChunkRecord* c = AddChunk(&report, i, w.box, rank);
      c->tile_shape = ChooseTileShape(w.box.shape(), p.element_size, tile_bytes);
      c->tile_checksums =
          TileChecksums(WriterData(p, w), TileGrid(w.box.shape(), c->tile_shape),
                        p.element_size);
    }
  }
  return report;
}

absl::Status WriteStrings(const std::string& partial,
                          const std::vector<PlannedTensor>& plan,
                          const std::vector<std::string>& string_reports) {
  bool any = false;
  for (const PlannedTensor& p : plan) any |= p.element_size == 0;
  if (!any) return absl::OkStatus();
  // tensor -> shard -> strings
  std::vector<absl::flat_hash_map<int64_t, std::vector<std::string>>> shards(plan.size());
  for (absl::string_view in : string_reports) {
    while (!in.empty()) {
      const size_t t = ReadU64(&in);
      const int64_t shard = ReadU64(&in);
      std::vector<std::string>& v = shards[t][shard];
      v.resize(ReadU64(&in));
      for (std::string& s : v) {
        const size_t len = ReadU64(&in);
        s.assign(in.data(), len);
        in.remove_prefix(len);
      }
    }
  }
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DataFileWriter> writer,
                            DataFileWriter::OpenSerialForAppend(partial));
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size != 0) continue;
    MESHCKPT_ASSIGN_OR_RETURN(int d, writer->CreateDataset(DatasetSpecOf(p)));
    for (const ShardWriter& w : p.writers) {
      MESHCKPT_RETURN_IF_ERROR(writer->WriteStrings(d, w.box, shards[i][w.shard].data()));
    }
  }
  return writer->Close();
}

std::string EncodeStorageTable(const StorageTable& table) {
  std::string out;
  for (const std::vector<StorageBlock>& blocks : table) {
    AppendU64(&out, blocks.size());
    for (const StorageBlock& b : blocks) {
      AppendU64(&out, b.origin.size());
      for (int64_t v : b.origin) AppendU64(&out, v);
      for (int64_t v : b.shape) AppendU64(&out, v);
      AppendU64(&out, b.offset);
    }
  }
  return out;
}

absl::StatusOr<StorageTable> DecodeStorageTable(absl::string_view in, size_t entries) {
  StorageTable table(entries);
  auto bad = [] { return absl::InternalError("malformed storage table from rank 0"); };
  for (std::vector<StorageBlock>& blocks : table) {
    if (in.size() < 8) return bad();
    blocks.resize(ReadU64(&in));
    for (StorageBlock& b : blocks) {
      if (in.size() < 8) return bad();
      const uint64_t rank = ReadU64(&in);
      if (in.size() < 8 * (2 * rank + 1)) return bad();
      b.origin.resize(rank);
      b.shape.resize(rank);
      for (int64_t& v : b.origin) v = static_cast<int64_t>(ReadU64(&in));
      for (int64_t& v : b.shape) v = static_cast<int64_t>(ReadU64(&in));
      b.offset = static_cast<int64_t>(ReadU64(&in));
    }
  }
  if (!in.empty()) return bad();
  return table;
}

absl::StatusOr<IndexRecord> BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& chunk_reports,
                                       const StorageTable& storage,
                                       const CheckpointContents& contents) {
  IndexRecord index(mesh);
  index.tensors.reserve(plan.size());
  for (const PlannedTensor& p : plan) {
    index.tensors.emplace_back(p.tensor->key, p.dataset, p.tensor->dtype, p.tensor->shape,
                               p.tensor->layout);
  }
  for (const std::string& r : chunk_reports) {
    MESHCKPT_ASSIGN_OR_RETURN(std::vector<RankReport::Chunk> chunks,
                              DecodeReportChunks(r, plan.size()));
    for (RankReport::Chunk& c : chunks) {
      index.tensors[c.tensor].chunks.push_back(std::move(c.record));
    }
  }
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    std::vector<ChunkRecord>& chunks = index.tensors[i].chunks;
    std::sort(chunks.begin(), chunks.end(), [](const ChunkRecord& a, const ChunkRecord& b) {
      return a.box.origin() < b.box.origin();
    });
    if (i >= storage.size() || storage[i].empty()) continue;
    for (ChunkRecord& c : chunks) {
      if (std::optional<StorageBlock> s =
              BlockHolding(storage[i], c.box, plan[i].element_size)) {
        c.file_offset = s->offset;
        c.storage_shape = s->shape;
      }
    }
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
  index.data_file = data.substr(data.rfind('/') + 1);
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
