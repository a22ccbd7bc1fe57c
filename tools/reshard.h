// The work of `meshckpt reshard` with its arguments parsed: a whole
// checkpoint rewritten for a new mesh (and layouts, a subset of tensors,
// float casts), streaming in bounded memory through RewriteCheckpoint
// (checkpoint/engine/stream_rewrite.h). Other commands that rewrite a whole
// checkpoint (convert) call it with their own command name.
//
//   ReshardRequest r;
//   r.src = "/ckpt/step-10";  r.dst = "/ckpt/step-10-x4";
//   r.mesh = {{"x", 4}};
//   int code = RunReshardRequest(*comm, r);  // Under MPI, every rank.
#ifndef MESHCKPT_TOOLS_RESHARD_H_
#define MESHCKPT_TOOLS_RESHARD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

struct ReshardRequest {
  std::string command = "reshard";  // Messages start "meshckpt <command>: ".
  // SRC as typed (cli::ResolvePrefix applies) and the destination prefix.
  std::string src, dst;
  std::vector<MeshDimension> mesh;  // The new mesh, over all ranks.
  // Target sharding specs by key or dataset path; otherwise the saved specs
  // where the new mesh has their dimension, else unsharded.
  std::map<std::string, std::vector<std::string>> layouts;
  // Keys or dataset paths to write; empty: all. The object graph and the
  // collections in user metadata are pruned to match.
  std::vector<std::string> tensors;
  std::map<std::string, DType> casts;  // Key or dataset path -> float dtype.
  int64_t max_memory = int64_t{256} << 20;
  bool force = false;     // Overwrite an existing DST.
  bool progress = false;  // Rank 0 draws progress on stderr (a terminal).
};

// Collective over `comm` (MPI already initialized); rank 0 prints the
// summary and errors. Returns the exit code (cli::ExitCode), the same on
// every rank.
int RunReshardRequest(Communicator& comm, const ReshardRequest& request);

// "256MiB", "64M", "1g", "4096": bytes, binary multiples (K/M/G/T, with or
// without "iB"); InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag, absl::string_view text);

}  // namespace meshckpt

#endif  // MESHCKPT_TOOLS_RESHARD_H_
