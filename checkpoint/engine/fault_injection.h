// Test-only fault injection: kill this process with SIGKILL at a named step of
// a save, to show that a crash anywhere leaves either the previous checkpoint
// or the new one, never a half one (docs/reliability.md).
//
// Cost in production: a fault point is one well-predicted branch on the
// global `internal::g_fault_armed`, which stays false unless the environment
// variable MESHCKPT_FAULT was set when the library was loaded, or a test
// installed a callback. No other fault code runs.
//
// MESHCKPT_FAULT is a comma-separated list of key=value:
//   point=<name>   kill when this point is reached (names below), or
//   point=random   at every point reached, kill with probability `prob`
//   rank=<r>       only the process that reaches the point as rank r
//                  (default: any rank)
//   hit=<n>        only the n-th time the point is reached in this process
//                  (default 1; point=random ignores it)
//   seed=<s>       point=random: seed of the per-process generator, mixed
//                  with the rank (default 1)
//   prob=<p>       point=random: probability per point reached (default 0.1)
//   log=<path>     before dying, append one line
//                  "fault point=<name> rank=<r> hit=<n> pid=<pid>" to <path>,
//                  so a test can tell the fault fired where it asked
// e.g. MESHCKPT_FAULT=point=after_data_rename,rank=0,log=/tmp/faults.txt
// A malformed value aborts the process at load time with a message.
//
// The fault points, in the order a CheckpointManager::Save reaches them:
//   during_data_write  SaveTensors, after each chunk a rank wrote to the
//                      `.h5.partial-<id>` file (every rank that writes data)
//   after_flush        SaveTensors, data file closed and fsynced by this
//                      rank, before the ranks agree (every rank)
//   after_agree        SaveTensors, ranks agreed, before rank 0 renames the
//                      data file into place (every rank)
//   after_data_rename  SaveTensors (rank 0): `<prefix>.h5` in place, no
//                      index yet
//   after_index        CheckpointManager::Save: the index is durable (the
//                      checkpoint exists), the state file not yet written
//                      (every rank)
//   after_state_file   CheckpointManager::Save (rank 0): state file names
//                      the new checkpoint, nothing deleted yet
//   during_sweep       CheckpointManager::Save (rank 0): before each
//                      checkpoint the retention policy deletes (hit=2 dies
//                      between two deletions)
//
// Thread-compatible: fault points may be reached from one thread at a time.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_
#define MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {
namespace internal {

// True when MESHCKPT_FAULT was set at load time or a callback is installed.
extern bool g_fault_armed;

// Out of line so that the armed path costs nothing where it is not taken.
void FaultPointReached(const char* point, int rank);

}  // namespace internal

// Marks a fault point. `point` is a string literal from the list above,
// `rank` the caller's rank in the saving job.
#define MESHCKPT_FAULT_POINT(point, rank)                              \
  do {                                                                 \
    if (__builtin_expect(::meshckpt::internal::g_fault_armed, false)) { \
      ::meshckpt::internal::FaultPointReached(point, rank);            \
    }                                                                  \
  } while (0)

// Every fault point name, in save order.
const std::vector<std::string>& FaultPointNames();

// A parsed MESHCKPT_FAULT value.
struct FaultSpec {
  std::string point;  // A fault point name or "random".
  int rank = -1;      // -1: any rank.
  int hit = 1;
  uint64_t seed = 1;
  double prob = 0.1;
  std::string log;
};
// InvalidArgument naming the bad key or value.
absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text);

// Tests in one process: `callback(point, rank)` runs at every fault point
// reached (before any MESHCKPT_FAULT action). An empty callback removes it.
void SetFaultCallbackForTesting(
    std::function<void(absl::string_view point, int rank)> callback);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_
