// SaveTensors: a save session's four steps back to back.
#include <memory>

#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/save_session.h"
#include "meshckpt/checkpoint/engine/shard_io.h"

namespace meshckpt {

absl::Status SaveTensors(Communicator& comm, const std::string& prefix,
                         absl::Span<const SaveTensor> tensors,
                         const CheckpointContents& contents, const IoOptions& io) {
  MESHCKPT_ASSIGN_OR_RETURN(
      std::unique_ptr<internal::SaveSession> session,
      internal::SaveSession::Begin(comm, prefix, tensors, contents, io));
  MESHCKPT_RETURN_IF_ERROR(session->Create(comm));
  const absl::Status written = session->Write(0, session->my_chunks().size());
  return session->Finish(comm, written);
}

}  // namespace meshckpt
