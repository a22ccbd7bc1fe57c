// PreemptionWatcher: a signal handler that sets a flag, and an all-reduce
// of that flag at step boundaries.
#include "meshckpt/checkpoint/manager/preemption.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshckpt {
namespace {

// Written by the handler, so it must be lock-free (a mutex-based atomic is
// not async-signal-safe).
std::atomic<int> g_signaled{0};
static_assert(std::atomic<int>::is_always_lock_free);
std::atomic<bool> g_watching{false};  // A watcher exists.

extern "C" void OnPreemptionSignal(int) {
  g_signaled.store(1, std::memory_order_relaxed);
}

}  // namespace

struct PreemptionWatcher::Saved {
  std::vector<struct sigaction> old;  // One per signals_ entry.
};

absl::StatusOr<std::unique_ptr<PreemptionWatcher>> PreemptionWatcher::Create(
    std::vector<int> signals) {
  if (signals.empty()) {
    return absl::InvalidArgumentError("PreemptionWatcher: no signals to watch");
  }
  for (int sig : signals) {
    if (sig == SIGKILL || sig == SIGSTOP || sig <= 0 || sig >= NSIG) {
      return absl::InvalidArgumentError(
          absl::StrCat("PreemptionWatcher: signal ", sig, " cannot be caught"));
    }
  }
  if (g_watching.exchange(true)) {
    return absl::FailedPreconditionError(
        "PreemptionWatcher: another watcher exists in this process");
  }
  g_signaled.store(0);
  auto saved = std::make_unique<Saved>();
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = OnPreemptionSignal;
  action.sa_flags = SA_RESTART;  // MPI's and HDF5's system calls carry on.
  sigemptyset(&action.sa_mask);
  for (int sig : signals) {
    struct sigaction old;
    if (sigaction(sig, &action, &old) != 0) {
      const int err = errno;
      for (size_t i = 0; i < saved->old.size(); ++i)
        sigaction(signals[i], &saved->old[i], nullptr);
      g_watching.store(false);
      return absl::InvalidArgumentError(absl::StrCat(
          "PreemptionWatcher: cannot handle signal ", sig, ": ", std::strerror(err)));
    }
    saved->old.push_back(old);
  }
  return std::unique_ptr<PreemptionWatcher>(
      new PreemptionWatcher(std::move(signals), std::move(saved)));
}

PreemptionWatcher::PreemptionWatcher(std::vector<int> signals,
                                     std::unique_ptr<Saved> saved)
    : signals_(std::move(signals)), saved_(std::move(saved)) {}

PreemptionWatcher::~PreemptionWatcher() {
  // Reverse order, so a signal listed twice gets its original handler back.
  for (size_t i = signals_.size(); i-- > 0;)
    sigaction(signals_[i], &saved_->old[i], nullptr);
  g_watching.store(false);
}

bool PreemptionWatcher::signaled() const { return g_signaled.load() != 0; }

bool PreemptionWatcher::Reached(Communicator& comm) {
  // Every rank takes part every time, whatever it knows already, so the
  // collective calls always match.
  const int64_t local = (reached_ || signaled()) ? 1 : 0;
  reached_ = comm.AllReduceMax(local) > 0;
  return reached_;
}

}  // namespace meshckpt
