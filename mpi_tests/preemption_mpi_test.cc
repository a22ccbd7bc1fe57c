// PreemptionWatcher::Reached under MPI: only the last rank gets the signal,
// and every rank sees the same answer at the same step boundary.
#include <csignal>

#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/preemption.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

TEST(PreemptionMpi, OneRankSignaledAllAgree) {
  Communicator& world = TestWorld();
  ASSERT_GE(world.size(), 2);
  std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create({SIGUSR1}).value();
  const int signaled_rank = world.size() - 1;
  for (int step = 1; step <= 5; ++step) {
    if (step == 3 && world.rank() == signaled_rank) {
      ASSERT_EQ(std::raise(SIGUSR1), 0);
    }
    const bool reached = w->Reached(world);
    // All ranks: false before step 3, true from step 3 on.
    EXPECT_EQ(reached, step >= 3) << "step " << step << " rank " << world.rank();
    // The answer every rank got, gathered: all equal.
    const int64_t any = world.AllReduceMax(reached ? 1 : 0);
    const int64_t all = -world.AllReduceMax(reached ? -1 : 0);  // min
    EXPECT_EQ(any, all) << "ranks disagree at step " << step;
  }
  // Only the signaled rank saw the signal itself.
  EXPECT_EQ(w->signaled(), world.rank() == signaled_rank);
}

}  // namespace
}  // namespace meshckpt
