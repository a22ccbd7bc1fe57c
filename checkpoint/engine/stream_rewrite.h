// RewriteCheckpoint: a whole checkpoint written again under another mesh,
// other layouts, a subset of its tensors or other float dtypes, in bounded
// memory: what `meshckpt reshard` (and `convert` into this format) run.
//
// The source is read only through its CheckpointHandle (ReadBox, so every
// byte read is verified as a restore verifies it, whatever format the
// handle reads). The destination is planned as a save of the target
// layouts, with every non-empty shard cut into chunks of a few MiB at most
// (SplitBox, save_plan.h), each chunk given to the least-loaded rank by
// bytes, whichever ranks hold it in the target layout: any rank count
// works, and one huge tensor spreads over all ranks. Each rank then, for
// each of its chunks in file order, reads that box of the source into one
// staging buffer, converts it when the dtype changes, and writes it; the
// save's commit protocol (save_session.h: temporary file, fsync, agree,
// index last) ends it, so a rewrite that fails or dies leaves no
// checkpoint at `prefix`.
//
// Memory: per rank, about `max_memory` for tensor data at most, whatever
// the size of the model or the number of devices of either mesh: a
// quarter of it is the staging buffer, the rest is headroom for the
// reader's and the writer's own buffers (a few MiB). Not counted: string
// tensors, which a save writes whole when it creates the file (rank 0
// holds them all then), the indexes (about a hundred bytes per chunk) and
// the process itself.
//
//   RewriteTensor t{"model/w", "", DType::kBfloat16, target_layout};
//   RewriteOptions o;
//   o.max_memory = int64_t{64} << 20;
//   absl::Status s = RewriteCheckpoint(**source, "/ckpt/w-bf16", {t}, contents, o);
#ifndef MESHCKPT_CHECKPOINT_ENGINE_STREAM_REWRITE_H_
#define MESHCKPT_CHECKPOINT_ENGINE_STREAM_REWRITE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt {

// One tensor of the destination, from the source tensor of the same key.
struct RewriteTensor {
  std::string key;
  std::string dataset;  // Destination dataset path; empty: the key.
  // The destination's dtype. When it differs from the source's, both must
  // be float dtypes (base/float_cast.h): values are rounded to nearest
  // even, and the destination's user metadata records the cast under
  // CastMetadataKey(key).
  DType dtype = DType::kFloat32;
  Layout layout;  // On the destination mesh (CheckpointContents::mesh).
};

struct RewriteOptions {
  // Bytes of tensor data each rank may hold at once (see above); at least
  // kMinRewriteMemory.
  int64_t max_memory = int64_t{256} << 20;
  // How the destination is written: checksum tile size; transfer_mode must
  // be kDirect (the staging buffer is reused as soon as a chunk is
  // written). verify_checksums applies to the source's reads.
  IoOptions io;
  // Called on rank 0 about a hundred times, with the bytes written by all
  // ranks so far and their total. Taken from rank 0: other ranks' values
  // are ignored. Each call waits for every rank to reach that point.
  std::function<void(int64_t done, int64_t total)> progress;
};

inline constexpr int64_t kMinRewriteMemory = int64_t{8} << 20;

// "meshckpt.cast:<key>": where the destination records that `key` was cast
// ("float32 -> bfloat16, round to nearest even").
std::string CastMetadataKey(absl::string_view key);

// Collective over source.comm(); the same status on every rank. `tensors`
// (the same on every rank) are written to `prefix` with `contents`, whose
// mesh must span the communicator's ranks. NotFound for a key the source
// lacks; InvalidArgument for a bad layout, shape, cast or option; DataLoss
// for damage read in the source; the save's errors otherwise. `prefix` may
// name the source (the handle keeps reading the file it opened).
absl::Status RewriteCheckpoint(CheckpointHandle& source, const std::string& prefix,
                               absl::Span<const RewriteTensor> tensors,
                               const CheckpointContents& contents,
                               const RewriteOptions& options);

// The graph without attributes naming keys outside `keep`, and without the
// nodes that then lead to no attribute (the root stays); nodes are
// renumbered in their old order. For a rewrite of some of the tensors.
ObjectGraph PruneObjectGraph(const ObjectGraph& graph,
                             const std::function<bool(const std::string&)>& keep);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_STREAM_REWRITE_H_
