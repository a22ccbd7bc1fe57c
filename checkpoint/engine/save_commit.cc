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
#include "proto/convert.h"

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

proto::ChunkProto* AddChunk(RankReport* report, const PlannedTensor& p,
                            const Box& box, int rank) {
  proto::CheckpointIndexProto& r = report->chunks;
  if (r.tensors_size() == 0 || r.tensors(r.tensors_size() - 1).key() != p.tensor->key) {
    r.add_tensors()->set_key(p.tensor->key);
  }
  proto::ChunkProto* c = r.mutable_tensors(r.tensors_size() - 1)->add_chunks();
  ChunkBoxToProto(box, c);
  c->set_writer_rank(rank);
  return c;
}

// Payload: [tensor index][shard][count] then count x ([len][bytes]).
void AddStringChunk(RankReport* report, size_t tensor, const PlannedTensor& p,
                    const ShardWriter& w, int rank) {
  const auto* strings = static_cast<const std::string*>(WriterData(p, w));
  const int64_t n = w.box.num_elements();
  proto::ChunkProto* c = AddChunk(report, p, w.box, rank);
  for (int64_t s : w.box.shape()) c->add_tile_shape(s);
  c->add_tile_checksums(HashStrings(strings, n));
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
      proto::ChunkProto* c = AddChunk(&report, p, w.box, rank);
      std::vector<int64_t> tile =
          ChooseTileShape(w.box.shape(), p.element_size, tile_bytes);
      for (int64_t s : tile) c->add_tile_shape(s);
      for (uint64_t h : TileChecksums(WriterData(p, w),
                                      TileGrid(w.box.shape(), tile), p.element_size)) {
        c->add_tile_checksums(h);
      }
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

proto::CheckpointIndexProto BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& chunk_reports,
                                       const StorageTable& storage,
                                       const SaveOptions& options) {
  proto::CheckpointIndexProto index;
  *index.mutable_mesh() = MeshToProto(mesh);
  bool compact = IsCompactMeshProto(index.mesh());
  absl::flat_hash_map<std::string, proto::TensorEntryProto*> by_key;
  for (const PlannedTensor& p : plan) {
    proto::TensorEntryProto* e = index.add_tensors();
    e->set_key(p.tensor->key);
    e->set_dataset(p.dataset);
    e->set_dtype(DTypeToProto(p.tensor->dtype));
    for (int64_t s : p.tensor->shape) e->add_shape(s);
    const bool own_mesh = !p.tensor->layout.mesh().SameGridAs(mesh);
    *e->mutable_layout() = LayoutToProto(p.tensor->layout, own_mesh);
    compact |= own_mesh && IsCompactMeshProto(e->layout().mesh());
    by_key[p.tensor->key] = e;
  }
  // Older readers would take a compact mesh for a damaged one.
  if (compact) index.mutable_version()->set_min_consumer(kCompactMeshVersion);
  for (const std::string& r : chunk_reports) {
    proto::CheckpointIndexProto part;
    part.ParseFromString(r);
    for (proto::TensorEntryProto& t : *part.mutable_tensors()) {
      proto::TensorEntryProto* e = by_key[t.key()];
      for (proto::ChunkProto& c : *t.mutable_chunks()) *e->add_chunks() = std::move(c);
    }
  }
  for (int i = 0; i < index.tensors_size(); ++i) {
    proto::TensorEntryProto& e = *index.mutable_tensors(i);
    std::sort(e.mutable_chunks()->begin(), e.mutable_chunks()->end(),
              [](const proto::ChunkProto& a, const proto::ChunkProto& b) {
                return std::lexicographical_compare(a.origin().begin(), a.origin().end(),
                                                    b.origin().begin(), b.origin().end());
              });
    if (static_cast<size_t>(i) >= storage.size() || storage[i].empty()) continue;
    for (proto::ChunkProto& c : *e.mutable_chunks()) {
      const Box box = ChunkBoxFromProto(c).value();  // Made by AddChunk.
      if (std::optional<StorageBlock> s =
              BlockHolding(storage[i], box, plan[i].element_size)) {
        c.set_file_offset(s->offset);
        for (int64_t v : s->shape) c.add_storage_shape(v);
      }
    }
  }
  *index.mutable_object_graph() = options.object_graph;
  for (const auto& [k, v] : options.user_metadata) (*index.mutable_user_metadata())[k] = v;
  index.set_save_counter(options.save_counter);
  index.set_step(options.step);
  index.set_timestamp(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  index.set_library_version(kLibraryVersion);
  return index;
}

absl::Status Commit(const std::string& prefix, const std::string& partial,
                    proto::CheckpointIndexProto index) {
  const std::string data = DataFilePath(prefix), index_path = IndexFilePath(prefix);
  MESHCKPT_ASSIGN_OR_RETURN(int64_t size, FileSize(partial));
  index.set_data_file(data.substr(data.rfind('/') + 1));
  index.set_data_file_size(size);
  // An older checkpoint at this prefix stops existing before its data file is
  // replaced, so a crash cannot pair its index with the new data.
  if (FileExists(index_path)) {
    MESHCKPT_RETURN_IF_ERROR(RemoveFileIfExists(index_path));
    MESHCKPT_RETURN_IF_ERROR(SyncParentDir(index_path));
  }
  MESHCKPT_RETURN_IF_ERROR(RenameFile(partial, data));
  MESHCKPT_RETURN_IF_ERROR(SyncParentDir(data));
  MESHCKPT_FAULT_POINT("after_data_rename", 0);  // Commit runs on rank 0.
  return WriteFileAtomically(index_path, EncodeIndexFile(std::move(index)));
}

}  // namespace meshckpt::internal
