// PreemptionWatcher: notice that the scheduler wants the job to stop, and
// let every rank agree on it at the same step, so that they save together.
//
// Schedulers announce preemption with a signal and kill the job a grace
// period later (Slurm and Kubernetes send SIGTERM). A watcher installs a
// handler for the signals it is given that only sets a flag (a lock-free
// atomic store, async-signal-safe), with SA_RESTART so that the system calls
// under MPI and HDF5 do not fail with EINTR. Signals reach ranks one by one
// (or only some of them), so a rank must not act on its own flag: at a step
// boundary every rank calls Reached(comm), an all-reduce of the flags, and
// all get the same answer in the same step, like Orbax's
// `reached_preemption(step)`.
//
//   std::unique_ptr<PreemptionWatcher> watcher = *PreemptionWatcher::Create();
//   while (training) {
//     Step();
//     if (watcher->Reached(comm)) {  // Collective; the same on every rank.
//       manager->Save(std::nullopt, /*check_interval=*/false);  // Even off-interval.
//       manager->WaitUntilFinished();  // If the manager saves asynchronously.
//       return 0;
//     }
//   }
//
// One watcher per process at a time (the handler has one flag to set).
// Destroying it restores the handlers it replaced; a signal that arrives
// after that gets the old behavior (for SIGTERM, usually death). The handler
// may run on any thread; the other calls belong to one thread.
#ifndef MESHCKPT_CHECKPOINT_MANAGER_PREEMPTION_H_
#define MESHCKPT_CHECKPOINT_MANAGER_PREEMPTION_H_

#include <csignal>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

class PreemptionWatcher {
 public:
  // Watches `signals` (SIGTERM by default; SIGUSR1 is what `mpirun` forwards
  // to the ranks, see docs/reliability.md). InvalidArgument for an empty list
  // or a signal that cannot be caught (SIGKILL, SIGSTOP, not a signal);
  // FailedPrecondition while another watcher exists in this process.
  static absl::StatusOr<std::unique_ptr<PreemptionWatcher>> Create(
      std::vector<int> signals = {SIGTERM});
  ~PreemptionWatcher();
  PreemptionWatcher(const PreemptionWatcher&) = delete;
  PreemptionWatcher& operator=(const PreemptionWatcher&) = delete;

  const std::vector<int>& signals() const { return signals_; }

  // Whether this process got one of the signals since Create. Local, no
  // communication: for logging, not for deciding to stop.
  bool signaled() const;

  // Collective over `comm`: true on every rank when any rank got one of the
  // signals since Create, false on every rank otherwise. Once true it stays
  // true. Costs one all-reduce of one integer; call it at step boundaries.
  bool Reached(Communicator& comm);

 private:
  struct Saved;  // The handlers replaced, restored by the destructor.
  PreemptionWatcher(std::vector<int> signals, std::unique_ptr<Saved> saved);

  std::vector<int> signals_;
  std::unique_ptr<Saved> saved_;
  bool reached_ = false;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_MANAGER_PREEMPTION_H_
