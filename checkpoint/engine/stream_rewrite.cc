// RewriteCheckpoint (stream_rewrite.h): a checkpoint copied chunk by chunk
// through one staging buffer per rank, under a save's commit protocol.
#include "meshckpt/checkpoint/engine/stream_rewrite.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/float_cast.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/save_session.h"
#include "meshckpt/checkpoint/engine/tf_checkpoint.h"

namespace meshckpt {
namespace {

// Progress reports over all ranks: how many, and the share of the staging
// budget in `max_memory` (the rest is the reader's and writer's headroom).
constexpr int kProgressSteps = 100;
constexpr int64_t kStagingShare = 4;

struct Source {
  const CheckpointIndex::Tensor* saved;
  DType to;
  bool cast() const { return saved->dtype != to; }
};

// The sum of every rank's `value`; collective.
int64_t SumOverRanks(Communicator& comm, int64_t value) {
  int64_t sum = 0;
  for (const std::string& bytes : comm.AllGather(
           std::string(reinterpret_cast<const char*>(&value), sizeof(value)))) {
    int64_t v = 0;
    std::memcpy(&v, bytes.data(), sizeof(v));
    sum += v;
  }
  return sum;
}

// kProgressSteps collective reports of the bytes all ranks wrote: rank r
// joins report j once it has written j/kProgressSteps of its own bytes (all
// of them at the end when it has none, or after a failure), so every rank
// makes the same calls whatever its share.
class ProgressSteps {
 public:
  ProgressSteps(Communicator& comm, const RewriteOptions& options, int64_t mine,
                int64_t total)
      : comm_(comm), progress_(options.progress), mine_(mine), total_(total) {
    enabled_ = BroadcastValue(comm, comm.rank() == 0 && progress_ != nullptr, 0);
  }
  void Reached(int64_t done) {
    if (!enabled_ || mine_ == 0) return;
    while (step_ < kProgressSteps &&
           static_cast<double>(done) * kProgressSteps >=
               static_cast<double>(step_ + 1) * static_cast<double>(mine_)) {
      Report(done);
    }
  }
  void Finish(int64_t done) {
    while (enabled_ && step_ < kProgressSteps) Report(done);
  }

 private:
  void Report(int64_t done) {
    ++step_;
    const int64_t all = SumOverRanks(comm_, done);
    if (comm_.rank() == 0) progress_(all, total_);
  }

  Communicator& comm_;
  const std::function<void(int64_t, int64_t)>& progress_;
  const int64_t mine_, total_;
  bool enabled_ = false;
  int step_ = 0;
};

absl::Status CheckRequest(const CheckpointHandle& source,
                          absl::Span<const RewriteTensor> tensors,
                          const RewriteOptions& options, std::vector<Source>* sources) {
  if (options.max_memory < kMinRewriteMemory) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory budget of ", options.max_memory,
                     " bytes is below the minimum of ", kMinRewriteMemory, " bytes"));
  }
  if (options.io.transfer_mode != TransferMode::kDirect) {
    return absl::InvalidArgumentError(
        "a streaming rewrite writes with TransferMode::kDirect only: it reuses its "
        "staging buffer as soon as a chunk is written");
  }
  for (const RewriteTensor& t : tensors) {
    const CheckpointIndex::Tensor* saved = source.index().Find(t.key);
    if (saved == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "tensor '", t.key, "' is not in checkpoint '", source.prefix(), "'"));
    }
    if (saved->dtype != t.dtype &&
        (!IsFloatDType(saved->dtype) || !IsFloatDType(t.dtype))) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.key, "' cannot be cast from ",
                       DTypeName(saved->dtype), " to ", DTypeName(t.dtype),
                       ": casts are between float16, bfloat16, float32 and float64"));
    }
    sources->push_back({saved, t.dtype});
  }
  return absl::OkStatus();
}

// The largest chunk, in destination bytes, whose staging (source bytes,
// plus destination bytes when cast) fits the budget's staging share.
int64_t MaxChunkBytes(const std::vector<Source>& sources, int64_t max_memory) {
  const int64_t staging = max_memory / kStagingShare;
  int64_t max_chunk = staging;
  for (const Source& s : sources) {
    const int64_t from = DTypeSize(s.saved->dtype), to = DTypeSize(s.to);
    if (to == 0) continue;
    const int64_t per_element = from + (s.cast() ? to : 0);
    max_chunk = std::min(max_chunk, staging / per_element * to);
  }
  return max_chunk;
}

}  // namespace

std::string CastMetadataKey(absl::string_view key) {
  return absl::StrCat("meshckpt.cast:", key);
}

absl::Status RewriteCheckpoint(CheckpointHandle& source, const std::string& prefix,
                               absl::Span<const RewriteTensor> tensors,
                               const CheckpointContents& contents,
                               const RewriteOptions& options) {
  Communicator& comm = source.comm();
  PhaseTrace trace("rewrite", comm.rank());
  std::vector<Source> sources;
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(CheckRequest(source, tensors, options, &sources)));
  if (internal::TfCheckpoint* tf = source.tensorflow();
      tf != nullptr && options.io.verify_checksums) {
    // A bundle has one CRC per entry, which a piece cannot check alone: the
    // ranks check each entry once together, and the pieces then read only
    // their own bytes.
    std::vector<std::string> keys;
    keys.reserve(sources.size());
    for (const Source& s : sources) keys.push_back(s.saved->key);
    MESHCKPT_RETURN_IF_ERROR(tf->VerifyKeys(comm, source.index(), keys));
  }

  std::vector<SaveTensor> saves;
  CheckpointContents with_casts = contents;
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RewriteTensor& t = tensors[i];
    saves.push_back(
        {t.key, t.dataset, t.dtype, sources[i].saved->shape, t.layout, {}, {}});
    if (sources[i].cast()) {
      with_casts.user_metadata[CastMetadataKey(t.key)] =
          absl::StrCat(DTypeName(sources[i].saved->dtype), " -> ", DTypeName(t.dtype),
                       ", round to nearest even");
    }
    if (DTypeSize(t.dtype) > 0) {
      total +=
          Box::FromShape(sources[i].saved->shape).num_elements() * DTypeSize(t.dtype);
    }
  }
  // Plan order is key order (PlanSave): the source of each planned dataset.
  std::vector<size_t> by_dataset(tensors.size());
  for (size_t i = 0; i < by_dataset.size(); ++i) by_dataset[i] = i;
  std::sort(by_dataset.begin(), by_dataset.end(),
            [&](size_t a, size_t b) { return tensors[a].key < tensors[b].key; });

  // The staging buffers, sized for this rank's largest chunk, are made when
  // the plan is known; every numeric chunk of this rank points at the one
  // its bytes are written from. String chunks are read here, whole.
  std::unique_ptr<char[]> read_buffer, cast_buffer;
  std::vector<std::vector<std::string>> strings;
  absl::Status read_status;
  auto redirect = [&](const std::vector<internal::SaveSession::MyChunk>& mine,
                      std::vector<SinkDataset>& datasets) {
    int64_t read_bytes = 0, cast_bytes = 0;
    for (const internal::SaveSession::MyChunk& c : mine) {
      const Source& s = sources[by_dataset[c.dataset]];
      const int64_t n = c.bytes / DTypeSize(s.to);
      read_bytes = std::max(read_bytes, n * DTypeSize(s.saved->dtype));
      if (s.cast()) cast_bytes = std::max(cast_bytes, c.bytes);
    }
    if (read_bytes > 0) read_buffer.reset(new char[read_bytes]);
    if (cast_bytes > 0) cast_buffer.reset(new char[cast_bytes]);
    for (const internal::SaveSession::MyChunk& c : mine) {
      datasets[c.dataset].chunks[c.chunk].data =
          sources[by_dataset[c.dataset]].cast() ? cast_buffer.get() : read_buffer.get();
    }
    for (size_t d = 0; d < datasets.size() && read_status.ok(); ++d) {
      if (datasets[d].spec.dtype != DType::kString) continue;
      for (SinkChunk& c : datasets[d].chunks) {
        if (c.rank != comm.rank()) continue;
        std::vector<std::string>& s = strings.emplace_back(c.box.num_elements());
        read_status = source.ReadBox(tensors[by_dataset[d]].key, c.box, s.data(),
                                     options.io.verify_checksums);
        if (!read_status.ok()) break;
        c.data = s.data();
      }
    }
  };
  internal::ChunkPolicy policy;
  policy.max_chunk_bytes = MaxChunkBytes(sources, options.max_memory);
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<internal::SaveSession> session,
                            internal::SaveSession::Begin(comm, prefix, saves, with_casts,
                                                         options.io, redirect, policy));
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(read_status));
  trace.Mark("begin");
  MESHCKPT_RETURN_IF_ERROR(session->Create(comm));
  std::vector<std::vector<std::string>>().swap(strings);  // Written by Create.
  trace.Mark("create");

  // Each chunk of this rank, in file order: read, cast, write.
  const std::vector<internal::SaveSession::MyChunk>& mine = session->my_chunks();
  ProgressSteps progress(comm, options, session->my_bytes(), total);
  absl::Status local;
  int64_t done = 0;
  for (size_t k = 0; k < mine.size(); ++k) {
    const internal::SaveSession::MyChunk& c = mine[k];
    if (local.ok()) {
      const Source& s = sources[by_dataset[c.dataset]];
      const Box& box = session->plan()[c.dataset].writers[c.chunk].box;
      local = source.ReadBox(s.saved->key, box, read_buffer.get(),
                             options.io.verify_checksums);
      if (!local.ok()) {
        local = absl::Status(local.code(), absl::StrCat("reading '", source.prefix(),
                                                        "': ", local.message()));
      } else {
        if (s.cast()) {
          CastFloats(s.saved->dtype, read_buffer.get(), s.to, cast_buffer.get(),
                     box.num_elements());
        }
        local = session->Write(k, k + 1);
      }
    }
    done += c.bytes;
    progress.Reached(done);
  }
  progress.Finish(done);
  trace.Mark("write");
  read_buffer.reset();
  cast_buffer.reset();
  return session->Finish(comm, local);
}

ObjectGraph PruneObjectGraph(const ObjectGraph& graph,
                             const std::function<bool(const std::string&)>& keep) {
  const int n = static_cast<int>(graph.nodes.size());
  if (n == 0) return graph;
  // A node stays when it keeps an attribute or reaches one that does: walk
  // the child edges backwards from those.
  std::vector<std::vector<int>> parents(n);
  std::vector<bool> stays(n, false);
  std::vector<int> todo;
  for (int i = 0; i < n; ++i) {
    for (const ObjectGraph::Child& c : graph.nodes[i].children) {
      if (c.node_id >= 0 && c.node_id < n) parents[c.node_id].push_back(i);
    }
    for (const ObjectGraph::Attribute& a : graph.nodes[i].attributes) {
      if (keep(a.checkpoint_key) && !stays[i]) {
        stays[i] = true;
        todo.push_back(i);
      }
    }
  }
  while (!todo.empty()) {
    const int i = todo.back();
    todo.pop_back();
    for (int p : parents[i]) {
      if (!stays[p]) {
        stays[p] = true;
        todo.push_back(p);
      }
    }
  }
  stays[0] = true;
  std::vector<int> new_id(n, -1);
  ObjectGraph out;
  for (int i = 0; i < n; ++i) {
    if (!stays[i]) continue;
    new_id[i] = static_cast<int>(out.nodes.size());
    out.nodes.emplace_back();
  }
  for (int i = 0; i < n; ++i) {
    if (!stays[i]) continue;
    ObjectGraph::Node& node = out.nodes[new_id[i]];
    for (const ObjectGraph::Child& c : graph.nodes[i].children) {
      if (c.node_id >= 0 && c.node_id < n && stays[c.node_id]) {
        node.children.push_back({new_id[c.node_id], c.local_name});
      }
    }
    for (const ObjectGraph::Attribute& a : graph.nodes[i].attributes) {
      if (keep(a.checkpoint_key)) node.attributes.push_back(a);
    }
  }
  return out;
}

}  // namespace meshckpt
