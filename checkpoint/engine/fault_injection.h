// Fault points: named steps of a save at which a test may kill the process,
// to show that a crash anywhere leaves either the previous checkpoint or the
// new one, never a half one (docs/reliability.md).
//
// The library only marks the points. What happens at them is a hook that
// test code installs: the test-only library meshckpt_fault_injection
// (checkpoint/engine/testing/fault_injector.h), which nothing but tests
// links. Without it the hook is a constant-initialized null pointer that
// nothing sets, so a fault point cannot fire, and costs one well-predicted
// compare with null. The library reads no environment variable for this and
// runs no static initializer.
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
// In an async save (async_save.h) every point from during_data_write on is
// reached on the background thread. Thread-compatible: fault points may be
// reached from one thread at a time, which holds because at most one save
// is in flight per process.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_
#define MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_

#include <atomic>

namespace meshckpt {
namespace internal {

// Called at every fault point reached: `point` is its name from the list
// above, `rank` the caller's rank in the saving job.
using FaultHook = void (*)(const char* point, int rank);

// Null unless a test installed a hook (SetFaultHook in the test-only
// library). Atomic so that installing one never races with a save; a
// relaxed load is a plain load.
extern std::atomic<FaultHook> g_fault_hook;

}  // namespace internal

// Marks a fault point. `point` is a string literal from the list above,
// `rank` the caller's rank in the saving job.
#define MESHCKPT_FAULT_POINT(point, rank)                                   \
  do {                                                                      \
    const ::meshckpt::internal::FaultHook meshckpt_fault_hook =             \
        ::meshckpt::internal::g_fault_hook.load(std::memory_order_relaxed); \
    if (__builtin_expect(meshckpt_fault_hook != nullptr, false)) {          \
      meshckpt_fault_hook(point, rank);                                     \
    }                                                                       \
  } while (0)

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_FAULT_INJECTION_H_
