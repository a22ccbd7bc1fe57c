// SaveTensors: planning, the collective write and the commit protocol.
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/phase_trace.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "base/version.h"
#include "checkpoint/fault_injection.h"
#include "checkpoint/shard_io.h"
#include "checkpoint/shard_io_internal.h"
#include "io/checksum.h"
#include "io/data_file.h"
#include "io/fs.h"
#include "io/index_file.h"
#include "io/io_pieces.h"
#include "layout/shard_map.h"
#include "proto/convert.h"

namespace meshckpt {
namespace {

// HDF5 chunks must stay below 4 GiB; we stay well below.
constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;
// Strings have no fixed size; a nominal one keeps writer balance sensible.
constexpr int64_t kNominalStringBytes = 32;

struct PlannedTensor {
  const SaveTensor* tensor;
  std::string dataset;
  ShardMap map;
  std::vector<ShardWriter> writers;
  std::vector<int64_t> chunk_shape;  // Empty: contiguous.
  int64_t element_size;              // 0 for strings.
};

// Shards cut only along dimension 0 (or not at all) are runs of whole rows,
// already contiguous in a contiguous dataset. Otherwise HDF5 chunks shaped
// like the shards keep each rank's data in one contiguous region.
std::vector<int64_t> ChooseChunkShape(const ShardMap& map, int64_t element_size) {
  bool inner_split = false;
  for (size_t d = 1; d < map.grid_shape().size(); ++d) {
    inner_split |= map.grid_shape()[d] > 1;
  }
  if (!inner_split) return {};
  std::vector<int64_t> chunk = map.block_shape();
  for (int64_t& c : chunk) c = std::max<int64_t>(c, 1);
  auto bytes = [&] {
    int64_t n = element_size;
    for (int64_t c : chunk) n *= c;
    return n;
  };
  while (bytes() > kMaxChunkBytes) {
    auto largest = std::max_element(chunk.begin(), chunk.end());
    *largest = (*largest + 1) / 2;
  }
  return chunk;
}

const void* DeviceData(const SaveTensor& t, int64_t device) {
  const Mesh& mesh = t.layout.mesh();
  return t.device_data[device - mesh.rank() * mesh.devices_per_rank()];
}

absl::Status ValidateInputs(const Communicator& comm,
                            absl::Span<const SaveTensor> tensors) {
  absl::flat_hash_set<std::string> keys, paths;
  for (const SaveTensor& t : tensors) {
    const std::string& path = t.dataset.empty() ? t.key : t.dataset;
    MESHCKPT_RETURN_IF_ERROR(internal::ValidateDatasetPath(t.key, path));
    if (!keys.insert(t.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor key '", t.key, "' appears twice"));
    }
    if (!paths.insert(path).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.key, "': dataset path '", path, "' is used twice"));
    }
    MESHCKPT_RETURN_IF_ERROR(internal::CheckLayoutFitsComm(
        t.key, t.layout, t.device_data.size(), comm));
    absl::StatusOr<ShardMap> map = ShardMap::Create(t.layout, t.shape);
    if (!map.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.key, "': ", map.status().message()));
    }
    for (int64_t d : t.layout.mesh().local_device_ids()) {
      if (DeviceData(t, d) == nullptr && !map->DeviceBox(d).empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", t.key, "': the buffer of device ", d, " is null"));
      }
    }
  }
  // A dataset cannot also be a group holding another one.
  for (const std::string& p : paths) {
    for (size_t slash = p.find('/'); slash != std::string::npos;
         slash = p.find('/', slash + 1)) {
      if (paths.contains(p.substr(0, slash))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "dataset path '", p.substr(0, slash), "' is both a tensor and a "
            "group holding '", p, "'"));
      }
    }
  }
  return absl::OkStatus();
}

// What every rank must agree on: keys, dtypes, shapes, layouts.
uint64_t Fingerprint(absl::Span<const SaveTensor> tensors) {
  std::string text;
  for (const SaveTensor& t : tensors) {
    absl::StrAppend(&text, t.key, "|", t.dataset, "|", static_cast<int>(t.dtype),
                    "|");
    for (int64_t s : t.shape) absl::StrAppend(&text, s, ",");
    for (const std::string& s : t.layout.sharding_specs()) {
      absl::StrAppend(&text, s, ",");
    }
    for (const MeshDimension& d : t.layout.mesh().dims()) {
      absl::StrAppend(&text, d.name, "=", d.size, ",");
    }
    text += "\n";
  }
  return XXH3_64bits(text.data(), text.size());
}

std::vector<PlannedTensor> Plan(int num_ranks, absl::Span<const SaveTensor> tensors) {
  std::vector<const SaveTensor*> order;
  for (const SaveTensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const SaveTensor* a, const SaveTensor* b) { return a->key < b->key; });
  WriterAssigner assigner(num_ranks);
  std::vector<PlannedTensor> plan;
  for (const SaveTensor* t : order) {
    ShardMap map = ShardMap::Create(t->layout, t->shape).value();  // Validated.
    const int64_t esize = DTypeSize(t->dtype);
    std::vector<ShardWriter> writers =
        assigner.Assign(map, esize > 0 ? esize : kNominalStringBytes);
    std::vector<int64_t> chunk = ChooseChunkShape(map, std::max<int64_t>(esize, 1));
    plan.push_back({t, t->dataset.empty() ? t->key : t->dataset, std::move(map),
                    std::move(writers), std::move(chunk), esize});
  }
  return plan;
}

// The layout as rank 0 sees it, so collective attribute writes agree.
std::string CanonicalLayoutString(const Layout& layout) {
  return layout.WithMesh(layout.mesh().ForRank(0).value()).value().ToString();
}

// This rank's chunk records (boxes and checksums) and string payloads, as
// sent to rank 0.
struct RankReport {
  proto::CheckpointIndexProto chunks;  // Only key and chunks are set.
  std::string strings;                 // See AppendStrings.
};

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

// [tensor index][shard][count] then count x ([len][bytes]).
void AppendStrings(std::string* out, size_t tensor, int64_t shard,
                   const std::string* data, int64_t n) {
  AppendU64(out, tensor);
  AppendU64(out, shard);
  AppendU64(out, n);
  for (int64_t i = 0; i < n; ++i) {
    AppendU64(out, data[i].size());
    out->append(data[i]);
  }
}

RankReport BuildReport(const Communicator& comm, const std::vector<PlannedTensor>& plan,
                       int64_t tile_bytes) {
  RankReport report;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    proto::TensorEntryProto* entry = nullptr;
    for (const ShardWriter& w : p.writers) {
      if (w.rank != comm.rank()) continue;
      if (entry == nullptr) {
        entry = report.chunks.add_tensors();
        entry->set_key(p.tensor->key);
      }
      proto::ChunkProto* c = entry->add_chunks();
      ChunkBoxToProto(w.box, c);
      c->set_writer_rank(w.rank);
      const void* data = DeviceData(*p.tensor, w.device);
      if (p.element_size == 0) {
        const auto* strings = static_cast<const std::string*>(data);
        for (int64_t s : w.box.shape()) c->add_tile_shape(s);
        c->add_tile_checksums(HashStrings(strings, w.box.num_elements()));
        AppendStrings(&report.strings, i, w.shard, strings, w.box.num_elements());
        continue;
      }
      std::vector<int64_t> tile =
          ChooseTileShape(w.box.shape(), p.element_size, tile_bytes);
      for (int64_t s : tile) c->add_tile_shape(s);
      for (uint64_t h : TileChecksums(data, TileGrid(w.box.shape(), tile),
                                      p.element_size)) {
        c->add_tile_checksums(h);
      }
    }
  }
  return report;
}

// Writes this rank's numeric chunks. In collective mode every rank makes the
// same number of write calls per dataset, padding with WriteNothing.
absl::Status WriteChunks(const Communicator& comm, const std::vector<PlannedTensor>& plan,
                         const std::vector<int>& datasets, DataFileWriter& writer,
                         const SaveOptions& options) {
  const bool collective = options.transfer_mode == TransferMode::kCollective &&
                          comm.size() > 1;
  int64_t total = 0, done = 0;
  for (const PlannedTensor& p : plan) {
    for (const ShardWriter& w : p.writers) {
      if (w.rank == comm.rank()) total += w.box.num_elements() * p.element_size;
    }
  }
  absl::Status status;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;  // Strings are written serially.
    std::vector<int64_t> calls(comm.size(), 0);
    for (const ShardWriter& w : p.writers) {
      calls[w.rank] += NumIoPieces(w.box, p.element_size);
    }
    int64_t made = 0;
    for (const ShardWriter& w : p.writers) {
      if (w.rank != comm.rank()) continue;
      if (status.ok()) {
        status = writer.Write(datasets[i], w.box, DeviceData(*p.tensor, w.device));
        MESHCKPT_FAULT_POINT("during_data_write", comm.rank());
        done += w.box.num_elements() * p.element_size;
        if (options.progress) options.progress(done, total);
      }
      made += NumIoPieces(w.box, p.element_size);
    }
    if (!collective) continue;
    // After a local failure keep making the calls others wait for.
    const int64_t needed = *std::max_element(calls.begin(), calls.end());
    if (!status.ok()) made = 0;
    for (; made < needed; ++made) {
      absl::Status s = writer.WriteNothing(datasets[i]);
      if (status.ok()) status = s;
    }
  }
  return status;
}

// Rank 0, after the collective close: creates and fills string datasets.
absl::Status WriteStrings(const std::string& partial,
                          const std::vector<PlannedTensor>& plan,
                          const std::vector<std::string>& reports) {
  // tensor -> shard -> strings
  std::vector<absl::flat_hash_map<int64_t, std::vector<std::string>>> shards(plan.size());
  for (absl::string_view in : reports) {
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
  bool any = false;
  for (const PlannedTensor& p : plan) any |= p.element_size == 0;
  if (!any) return absl::OkStatus();
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DataFileWriter> writer,
                            DataFileWriter::OpenSerialForAppend(partial));
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size != 0) continue;
    DatasetSpec spec{p.dataset, DType::kString, p.tensor->shape, p.chunk_shape,
                     {{"dtype", "string"},
                      {"layout", CanonicalLayoutString(p.tensor->layout)},
                      {"key", p.tensor->key}}};
    for (const auto& [shard, v] : shards[i]) {
      for (const std::string& s : v) spec.binary_strings |= s.find('\0') != std::string::npos;
    }
    MESHCKPT_ASSIGN_OR_RETURN(int d, writer->CreateDataset(spec));
    for (const ShardWriter& w : p.writers) {
      MESHCKPT_RETURN_IF_ERROR(writer->WriteStrings(d, w.box, shards[i][w.shard].data()));
    }
  }
  return writer->Close();
}

proto::CheckpointIndexProto BuildIndex(const Mesh& mesh,
                                       const std::vector<PlannedTensor>& plan,
                                       const std::vector<std::string>& reports,
                                       const SaveOptions& options) {
  proto::CheckpointIndexProto index;
  *index.mutable_mesh() = MeshToProto(mesh);
  absl::flat_hash_map<std::string, proto::TensorEntryProto*> by_key;
  for (const PlannedTensor& p : plan) {
    proto::TensorEntryProto* e = index.add_tensors();
    e->set_key(p.tensor->key);
    e->set_dataset(p.dataset);
    e->set_dtype(DTypeToProto(p.tensor->dtype));
    for (int64_t s : p.tensor->shape) e->add_shape(s);
    const bool own_mesh = !p.tensor->layout.mesh().SameGridAs(mesh);
    *e->mutable_layout() = LayoutToProto(p.tensor->layout, own_mesh);
    by_key[p.tensor->key] = e;
  }
  for (const std::string& r : reports) {
    proto::CheckpointIndexProto part;
    part.ParseFromString(r);
    for (proto::TensorEntryProto& t : *part.mutable_tensors()) {
      for (proto::ChunkProto& c : *t.mutable_chunks()) {
        *by_key[t.key()]->add_chunks() = std::move(c);
      }
    }
  }
  for (proto::TensorEntryProto& e : *index.mutable_tensors()) {
    std::sort(e.mutable_chunks()->begin(), e.mutable_chunks()->end(),
              [](const proto::ChunkProto& a, const proto::ChunkProto& b) {
                return std::lexicographical_compare(a.origin().begin(), a.origin().end(),
                                                    b.origin().begin(), b.origin().end());
              });
  }
  *index.mutable_object_graph() = options.object_graph;
  for (const auto& [k, v] : options.user_metadata) (*index.mutable_user_metadata())[k] = v;
  index.set_save_counter(options.save_counter);
  index.set_step(options.step);
  index.set_timestamp(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  index.set_library_version(kLibraryVersion);
  return index;
}

// Rank 0: makes the checkpoint exist (steps 4 and 5 of the protocol).
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

absl::Status WithContext(const absl::Status& s, const std::string& file) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("saving '", file, "': ", s.message()));
}

}  // namespace

absl::Status SaveTensors(Communicator& comm, const std::string& prefix,
                         absl::Span<const SaveTensor> tensors,
                         const SaveOptions& options) {
  PhaseTrace trace("save", comm.rank());
  absl::Status input = ValidateInputs(comm, tensors);
  if (input.ok() && options.mesh.has_value() &&
      (options.mesh->num_ranks() != comm.size() || options.mesh->rank() != comm.rank())) {
    input = absl::InvalidArgumentError(absl::StrCat(
        "SaveOptions::mesh ", options.mesh->ToString(), " does not span this job's ",
        comm.size(), " ranks from rank ", comm.rank()));
  }
  for (const auto& [key, value] : options.user_metadata) {
    if (input.ok() && !IsValidUtf8(key)) {  // Protobuf map keys must be.
      input = absl::InvalidArgumentError(
          absl::StrCat("user metadata key '", absl::CHexEscape(key), "' is not valid UTF-8"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(input));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeSameOnAllRanks(
      comm, Fingerprint(tensors), "tensor lists to SaveTensors"));
  trace.Mark("validate");
  const std::vector<PlannedTensor> plan = Plan(comm.size(), tensors);
  trace.Mark("plan");
  absl::Status local;
  const Mesh mesh = options.mesh.has_value() ? *options.mesh
                    : tensors.empty()
                        ? Mesh::Create({{"ranks", comm.size()}}, comm.rank(), comm.size()).value()
                        : tensors[0].layout.mesh();

  if (comm.rank() == 0) {
    const size_t slash = prefix.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : prefix.substr(0, slash + 1);
    if (!FileExists(dir)) {
      local = absl::NotFoundError(absl::StrCat("cannot save '", prefix, "': directory '",
                                               dir, "' does not exist"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  std::string id = comm.rank() == 0 ? RandomId() : "";
  comm.Broadcast(&id, 0);
  const std::string partial = absl::StrCat(DataFilePath(prefix), ".partial-", id);
  auto cleanup = [&](const absl::Status& s) {
    if (comm.rank() == 0) (void)RemoveFileIfExists(partial);
    return s;
  };

  absl::StatusOr<std::unique_ptr<DataFileWriter>> writer = DataFileWriter::Create(
      comm, partial,
      internal::FileOptions(options.transfer_mode == TransferMode::kCollective,
                            options.mpi_hints));
  if (absl::Status s = comm.Agree(WithContext(writer.status(), partial)); !s.ok()) {
    return cleanup(s);
  }
  trace.Mark("create_file");
  std::vector<int> datasets(plan.size(), -1);
  for (size_t i = 0; i < plan.size() && local.ok(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;
    absl::StatusOr<int> d = (*writer)->CreateDataset(
        {p.dataset, p.tensor->dtype, p.tensor->shape, p.chunk_shape,
         {{"dtype", std::string(DTypeName(p.tensor->dtype))},
          {"layout", CanonicalLayoutString(p.tensor->layout)},
          {"key", p.tensor->key}}});
    if (d.ok()) datasets[i] = *d;
    local = d.status();
  }
  if (absl::Status s = comm.Agree(WithContext(local, partial)); !s.ok()) {
    (void)(*writer)->Close();
    return cleanup(s);
  }

  trace.Mark("create_datasets");
  // Checksums are a pure function of the caller's buffers and touch no
  // HDF5 or MPI state, so they are computed while the data is written.
  RankReport report;
  double hash_seconds = 0;
  std::thread hasher([&] {
    const PhaseTrace::Clock::time_point t0 = PhaseTrace::Clock::now();
    report = BuildReport(comm, plan, options.checksum_tile_bytes);
    hash_seconds =
        std::chrono::duration<double>(PhaseTrace::Clock::now() - t0).count();
  });
  local = WriteChunks(comm, plan, datasets, **writer, options);
  trace.Mark("write");
  hasher.join();
  trace.Mark("hash_wait");
  trace.Add("(hash_thread)", hash_seconds);
  const std::vector<std::string> chunk_reports =
      comm.Gather(report.chunks.SerializeAsString(), 0);
  const std::vector<std::string> string_reports = comm.Gather(report.strings, 0);
  trace.Mark("gather");
  absl::Status closed = (*writer)->Close();
  if (local.ok()) local = closed;
  trace.Mark("close");
  if (local.ok() && comm.rank() == 0) local = WriteStrings(partial, plan, string_reports);
  trace.Mark("strings");
  // Every rank makes its own writes durable (needed on parallel filesystems).
  if (local.ok()) local = SyncFile(partial);
  trace.Mark("fsync");
  MESHCKPT_FAULT_POINT("after_flush", comm.rank());
  if (absl::Status s = comm.Agree(WithContext(local, partial)); !s.ok()) {
    return cleanup(s);
  }
  MESHCKPT_FAULT_POINT("after_agree", comm.rank());
  trace.Mark("agree");

  local = absl::OkStatus();
  if (comm.rank() == 0) {
    local = Commit(prefix, partial,
                   BuildIndex(mesh, plan, chunk_reports, options));
  }
  trace.Mark("commit");
  if (absl::Status s = comm.Agree(WithContext(local, IndexFilePath(prefix)));
      !s.ok()) {
    return cleanup(s);
  }
  trace.Mark("agree_commit");
  return absl::OkStatus();
}

}  // namespace meshckpt
