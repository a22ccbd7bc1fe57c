// Pieces shared by saver.cc, saver_restore.cc, saver_structure.cc and
// import_meta_graph.cc.
// Internal to the Saver; thread-compatible.
//
//   MESHCKPT_RETURN_IF_ERROR(internal::AgreeOnArguments(comm, path, "paths"));
#ifndef MESHCKPT_CHECKPOINT_SAVER_SAVER_INTERNAL_H_
#define MESHCKPT_CHECKPOINT_SAVER_SAVER_INTERNAL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/utf8.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt::internal {

// Collective. InvalidArgument on every rank unless every rank passed the
// same `text` as rank 0 (`what` names it in the message).
absl::Status AgreeOnArguments(Communicator& comm, const std::string& text,
                              absl::string_view what);

// An import's name scope without trailing '/'; InvalidArgument unless it is
// a valid dataset path (or empty).
absl::StatusOr<std::string> NormalizeImportScope(std::string scope);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_SAVER_SAVER_INTERNAL_H_
