// What a checkpoint's metadata costs as ranks and tensors grow: the save of
// many small tensors with rank 0 creating every dataset, the index's size,
// its broadcast alone, and the whole collective index read (read, broadcast,
// decode, validate on every rank), with a restore to check the values; and
// on rank 0, the save and restore plans of 1,000 tensors as one rank of 1k
// and 16k ranks computes them.
#ifndef MESHCKPT_BENCH_METADATA_BENCH_H_
#define MESHCKPT_BENCH_METADATA_BENCH_H_

#include <string>

#include "absl/status/status.h"
#include "bench/workload.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt::bench {

// Collective. Saves `w` to `prefix`, measures, restores and verifies, then
// removes the checkpoint; rank 0 prints one line of figures, then the plan
// costs (about a minute; with `quick`, 10 tensors at 1k ranks only).
absl::Status RunMetadataBench(Communicator& comm, const std::string& prefix, Workload& w,
                              int reps, bool quick);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_METADATA_BENCH_H_
