// SaveSession (save_session.h): the commit protocol of shard_io.h around the
// chunk sink's writes.
#include "meshckpt/checkpoint/engine/save_session.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/base/utf8.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"
#include "meshckpt/checkpoint/engine/save_commit.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt::internal {
namespace {

absl::Status WithContext(const absl::Status& s, const std::string& file) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("saving '", file, "': ", s.message()));
}

absl::Status CheckArguments(Communicator& comm, absl::Span<const SaveTensor> tensors,
                            const CheckpointContents& contents,
                            const ChunkPolicy& policy) {
  MESHCKPT_RETURN_IF_ERROR(
      ValidateSaveInputs(comm, tensors, /*buffers_optional=*/policy.max_chunk_bytes > 0));
  if (contents.mesh.has_value() && (contents.mesh->num_ranks() != comm.size() ||
                                    contents.mesh->rank() != comm.rank())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CheckpointContents::mesh ", contents.mesh->ToShortString(),
        " does not span this job's ", comm.size(), " ranks from rank ", comm.rank()));
  }
  for (const auto& [key, value] : contents.user_metadata) {
    if (!IsValidUtf8(key)) {  // Protobuf map keys must be.
      return absl::InvalidArgumentError(absl::StrCat(
          "user metadata key '", absl::CHexEscape(key), "' is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

// Per plan entry, in plan order: its dataset and every chunk (one per
// writer, in the writers' order), with this rank's buffers.
std::vector<SinkDataset> SinkDatasetsOf(int rank,
                                        const std::vector<PlannedTensor>& plan) {
  std::vector<SinkDataset> datasets(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    datasets[i].spec = DatasetSpecOf(p);
    datasets[i].chunks.reserve(p.writers.size());
    for (const ShardWriter& w : p.writers) {
      datasets[i].chunks.push_back(
          {w.rank, w.box, w.rank == rank ? WriterData(p, w) : nullptr});
    }
  }
  return datasets;
}

// This rank's numeric chunks in plan order (strings go in with the file).
std::vector<SaveSession::MyChunk> MyChunksOf(int rank,
                                             const std::vector<PlannedTensor>& plan) {
  std::vector<SaveSession::MyChunk> mine;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;
    for (size_t c = 0; c < p.writers.size(); ++c) {
      const ShardWriter& w = p.writers[c];
      if (w.rank == rank) mine.push_back({i, c, w.box.num_elements() * p.element_size});
    }
  }
  return mine;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SaveSession>> SaveSession::Begin(
    Communicator& comm, const std::string& prefix, absl::Span<const SaveTensor> tensors,
    const CheckpointContents& contents, const IoOptions& io, const Redirect& redirect,
    const ChunkPolicy& policy) {
  PhaseTrace trace("save_begin", comm.rank());
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(CheckArguments(comm, tensors, contents, policy)));
  MESHCKPT_RETURN_IF_ERROR(
      AgreeSameOnAllRanks(comm, SaveFingerprint(tensors), "tensor lists to SaveTensors"));
  trace.Mark("validate");
  std::unique_ptr<SaveSession> s(new SaveSession());
  s->rank_ = comm.rank();
  s->prefix_ = prefix;
  s->tensors_.assign(tensors.begin(), tensors.end());
  s->plan_ = PlanSave(comm.size(), s->tensors_, policy);
  s->contents_ = contents;
  if (!s->contents_.mesh.has_value()) {
    s->contents_.mesh =
        tensors.empty()
            ? Mesh::Create({{"ranks", comm.size()}}, comm.rank(), comm.size()).value()
            : tensors[0].layout.mesh();
  }
  s->io_ = io;
  s->mine_ = MyChunksOf(comm.rank(), s->plan_);
  for (const MyChunk& c : s->mine_) s->my_bytes_ += c.bytes;
  trace.Mark("plan");

  absl::Status local;
  if (comm.rank() == 0) {
    const std::string dir = Dirname(prefix);
    if (!FileExists(dir)) {
      local = absl::NotFoundError(absl::StrCat("cannot save '", prefix, "': directory '",
                                               dir, "' does not exist"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  std::string id = comm.rank() == 0 ? RandomId() : "";
  comm.Broadcast(&id, 0);
  s->partial_ = absl::StrCat(DataFilePath(prefix), ".partial-", id);

  s->datasets_ = SinkDatasetsOf(comm.rank(), s->plan_);
  if (redirect) redirect(s->mine_, s->datasets_);
  return s;
}

absl::Status SaveSession::Create(Communicator& comm) {
  PhaseTrace trace("save_create", comm.rank());
  absl::StatusOr<std::unique_ptr<ChunkSink>> sink =
      ChunkSink::Create(comm, partial_, std::move(datasets_), io_);
  if (!sink.ok()) {
    if (comm.rank() == 0) (void)RemoveFileIfExists(partial_);
    return WithContext(sink.status(), partial_);
  }
  sink_ = *std::move(sink);
  return absl::OkStatus();
}

SaveSession::~SaveSession() = default;

absl::Status SaveSession::Write(size_t begin, size_t end) {
  for (size_t k = begin; k < end && write_status_.ok(); ++k) {
    const MyChunk& c = mine_[k];
    const PlannedTensor& p = plan_[c.dataset];
    if (absl::Status s = sink_->Write(c.dataset, c.chunk); !s.ok()) {
      write_status_ = absl::Status(
          s.code(), absl::StrCat("tensor '", p.tensor->key, "', chunk ",
                                 p.writers[c.chunk].box.ToString(), ": ", s.message()));
      break;
    }
    if (c.bytes == 0) continue;
    MESHCKPT_FAULT_POINT("during_data_write", rank_);
    written_bytes_ += c.bytes;
    if (io_.progress) io_.progress(written_bytes_, my_bytes_);
  }
  return write_status_;
}

absl::Status SaveSession::Finish(Communicator& comm, absl::Status local) {
  finished_ = true;
  PhaseTrace trace("save_finish", comm.rank());
  auto cleanup = [&](const absl::Status& s) {
    if (comm.rank() == 0) (void)RemoveFileIfExists(partial_);
    return s;
  };
  if (local.ok()) local = write_status_;
  absl::StatusOr<std::vector<WrittenChunk>> written = sink_->Close();
  sink_.reset();
  if (local.ok()) local = written.status();
  trace.Mark("close");
  RankReport report;
  if (written.ok()) report.chunks = *std::move(written);
  const std::vector<std::string> chunk_reports =
      comm.Gather(EncodeReportChunks(report), 0);
  trace.Mark("gather");
  // 2. Every rank makes its own writes durable (needed on parallel
  // filesystems).
  if (local.ok()) local = SyncFile(partial_);
  trace.Mark("fsync");
  MESHCKPT_FAULT_POINT("after_flush", comm.rank());
  // 3. Agree.
  if (absl::Status s = comm.Agree(WithContext(local, partial_)); !s.ok()) {
    return cleanup(s);
  }
  MESHCKPT_FAULT_POINT("after_agree", comm.rank());
  trace.Mark("agree");

  // 4, 5. Rank 0 commits.
  local = absl::OkStatus();
  if (comm.rank() == 0) {
    absl::StatusOr<IndexRecord> index =
        BuildIndex(*contents_.mesh, plan_, chunk_reports, contents_);
    local = index.ok() ? Commit(prefix_, partial_, *std::move(index)) : index.status();
  }
  trace.Mark("commit");
  if (absl::Status s = comm.Agree(WithContext(local, IndexFilePath(prefix_))); !s.ok()) {
    return cleanup(s);
  }
  trace.Mark("agree_commit");
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
