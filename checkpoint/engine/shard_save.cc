// SaveTensors: the commit protocol around the chunk sink's writes.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/base/utf8.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"
#include "meshckpt/checkpoint/engine/save_commit.h"
#include "meshckpt/checkpoint/engine/save_data.h"
#include "meshckpt/checkpoint/engine/save_plan.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/chunk_sink.h"

namespace meshckpt {
namespace {

using internal::PlannedTensor;

absl::Status WithContext(const absl::Status& s, const std::string& file) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("saving '", file, "': ", s.message()));
}

absl::Status CheckArguments(Communicator& comm, absl::Span<const SaveTensor> tensors,
                            const CheckpointContents& contents) {
  MESHCKPT_RETURN_IF_ERROR(internal::ValidateSaveInputs(comm, tensors));
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

}  // namespace

absl::Status SaveTensors(Communicator& comm, const std::string& prefix,
                         absl::Span<const SaveTensor> tensors,
                         const CheckpointContents& contents, const IoOptions& io) {
  PhaseTrace trace("save", comm.rank());
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(CheckArguments(comm, tensors, contents)));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeSameOnAllRanks(
      comm, internal::SaveFingerprint(tensors), "tensor lists to SaveTensors"));
  trace.Mark("validate");
  const std::vector<PlannedTensor> plan = internal::PlanSave(comm.size(), tensors);
  trace.Mark("plan");
  const Mesh mesh =
      contents.mesh.has_value() ? *contents.mesh
      : tensors.empty()
          ? Mesh::Create({{"ranks", comm.size()}}, comm.rank(), comm.size()).value()
          : tensors[0].layout.mesh();
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
  const std::string partial = absl::StrCat(DataFilePath(prefix), ".partial-", id);
  auto cleanup = [&](const absl::Status& s) {
    if (comm.rank() == 0) (void)RemoveFileIfExists(partial);
    return s;
  };

  // 1. Data into the temporary file.
  absl::StatusOr<std::unique_ptr<ChunkSink>> sink =
      ChunkSink::Create(comm, partial, internal::SinkDatasetsOf(comm.rank(), plan), io);
  if (!sink.ok()) return cleanup(WithContext(sink.status(), partial));
  trace.Mark("create");
  local = internal::WriteMyChunks(comm.rank(), plan, **sink, io);
  absl::StatusOr<std::vector<WrittenChunk>> written = (*sink)->Close();
  sink->reset();
  if (local.ok()) local = written.status();
  trace.Mark("write");
  internal::RankReport report;
  if (written.ok()) report.chunks = *std::move(written);
  const std::vector<std::string> chunk_reports =
      comm.Gather(internal::EncodeReportChunks(report), 0);
  trace.Mark("gather");
  // 2. Every rank makes its own writes durable (needed on parallel
  // filesystems).
  if (local.ok()) local = SyncFile(partial);
  trace.Mark("fsync");
  MESHCKPT_FAULT_POINT("after_flush", comm.rank());
  // 3. Agree.
  if (absl::Status s = comm.Agree(WithContext(local, partial)); !s.ok()) {
    return cleanup(s);
  }
  MESHCKPT_FAULT_POINT("after_agree", comm.rank());
  trace.Mark("agree");

  // 4, 5. Rank 0 commits.
  local = absl::OkStatus();
  if (comm.rank() == 0) {
    absl::StatusOr<IndexRecord> index =
        internal::BuildIndex(mesh, plan, chunk_reports, contents);
    local = index.ok() ? internal::Commit(prefix, partial, *std::move(index))
                       : index.status();
  }
  trace.Mark("commit");
  if (absl::Status s = comm.Agree(WithContext(local, IndexFilePath(prefix))); !s.ok()) {
    return cleanup(s);
  }
  trace.Mark("agree_commit");
  return absl::OkStatus();
}

}  // namespace meshckpt
