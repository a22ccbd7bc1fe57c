// The offline reshard (RewriteCheckpoint, what `meshckpt reshard` runs)
// against its raw-disk baseline: reading the same number of bytes and
// writing them to a new file, per rank.
#ifndef MESHCKPT_BENCH_REWRITE_BENCH_H_
#define MESHCKPT_BENCH_REWRITE_BENCH_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bench/workload.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt::bench {

// Collective: opens `from` and rewrites all of it as `to`, each tensor in
// the workload's layout (on its mesh), with the default memory budget.
absl::Status RewriteOnce(Communicator& comm, const std::string& from,
                         const std::string& to, const Workload& w);

// Not collective: this rank's 1/ranks of `total` bytes, read from `source`
// (a checkpoint's data file, from rank * share on) and written to `to`
// through a buffer of the budget's staging size, then fsynced: the bytes a
// rewrite moves, without planning, checksums or HDF5.
absl::Status RawCopyShare(int rank, int ranks, const std::string& source,
                          const std::string& to, int64_t total);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_REWRITE_BENCH_H_
