// The async save measured against what it is meant to approach: its stall
// (AsyncSaver::Start as the caller sees it) against a memcpy of the same
// bytes per rank, and its time until durable against a synchronous save.
#ifndef MESHCKPT_BENCH_ASYNC_BENCH_H_
#define MESHCKPT_BENCH_ASYNC_BENCH_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "bench/bench_util.h"
#include "bench/workload.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt::bench {

struct AsyncTimes {
  // Max over ranks per rep, then median/min/max over reps.
  Stats stall, memcpy, durable, sync;
  double first_stall = 0;  // The untimed warm-up: staging memory allocated.
};

// Collective. `reps` rounds of async save, sync save and memcpy, the order
// rotating each round; `prepare` runs before every timed save (removing the
// checkpoint at `prefix`, dropping the page cache). Every rank's bytes are
// copied into one buffer kept across rounds, as staging is. The last async
// checkpoint is left at `prefix` for the caller to verify.
absl::StatusOr<AsyncTimes> MeasureAsyncSave(Communicator& comm, const std::string& prefix,
                                            const Workload& w, int reps,
                                            const std::function<absl::Status()>& prepare);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_ASYNC_BENCH_H_
