// PreemptionWatcher in one process: the handler sets the flag, Reached
// agrees (trivially, with one rank) and stays true, one watcher at a time,
// the replaced handler comes back, bad signals are refused.
#include "meshckpt/checkpoint/manager/preemption.h"

#include <signal.h>

#include <atomic>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::atomic<int> g_user_handler_calls{0};
extern "C" void CountingHandler(int) { g_user_handler_calls.fetch_add(1); }

TEST(PreemptionWatcher, SignalSetsTheFlagAndReachedStaysTrue) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create().value();
  EXPECT_EQ(w->signals(), std::vector<int>{SIGTERM});
  EXPECT_FALSE(w->signaled());
  EXPECT_FALSE(w->Reached(*comm));
  ASSERT_EQ(std::raise(SIGTERM), 0);  // Would end the test without the watcher.
  EXPECT_TRUE(w->signaled());
  EXPECT_TRUE(w->Reached(*comm));
  EXPECT_TRUE(w->Reached(*comm));
}

TEST(PreemptionWatcher, ChosenSignalsOnly) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  struct sigaction counting, old_term;
  std::memset(&counting, 0, sizeof counting);
  counting.sa_handler = CountingHandler;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(sigaction(SIGTERM, &counting, &old_term), 0);
  g_user_handler_calls.store(0);
  {
    std::unique_ptr<PreemptionWatcher> w =
        PreemptionWatcher::Create({SIGUSR1, SIGUSR2}).value();
    ASSERT_EQ(std::raise(SIGTERM), 0);  // Not watched: the user's handler.
    EXPECT_EQ(g_user_handler_calls.load(), 1);
    EXPECT_FALSE(w->Reached(*comm));
    ASSERT_EQ(std::raise(SIGUSR2), 0);
    EXPECT_TRUE(w->Reached(*comm));
  }
  ASSERT_EQ(sigaction(SIGTERM, &old_term, nullptr), 0);
}

TEST(PreemptionWatcher, DestructionRestoresThePreviousHandler) {
  struct sigaction counting, old_usr1;
  std::memset(&counting, 0, sizeof counting);
  counting.sa_handler = CountingHandler;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &counting, &old_usr1), 0);
  g_user_handler_calls.store(0);
  {
    std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create({SIGUSR1}).value();
    ASSERT_EQ(std::raise(SIGUSR1), 0);
    EXPECT_TRUE(w->signaled());
    EXPECT_EQ(g_user_handler_calls.load(), 0);  // The watcher's handler ran.
  }
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  EXPECT_EQ(g_user_handler_calls.load(), 1);  // The user's handler is back.
  ASSERT_EQ(sigaction(SIGUSR1, &old_usr1, nullptr), 0);
}

TEST(PreemptionWatcher, FreshWatcherStartsUnsignaled) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  {
    std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create({SIGUSR2}).value();
    ASSERT_EQ(std::raise(SIGUSR2), 0);
    EXPECT_TRUE(w->Reached(*comm));
  }
  std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create({SIGUSR2}).value();
  EXPECT_FALSE(w->signaled());
  EXPECT_FALSE(w->Reached(*comm));
}

TEST(PreemptionWatcher, OneAtATime) {
  std::unique_ptr<PreemptionWatcher> w = PreemptionWatcher::Create().value();
  absl::StatusOr<std::unique_ptr<PreemptionWatcher>> second =
      PreemptionWatcher::Create({SIGUSR1});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("another watcher"));
  w.reset();
  EXPECT_TRUE(PreemptionWatcher::Create({SIGUSR1}).ok());
}

TEST(PreemptionWatcher, SignalsThatCannotBeCaughtAreRefused) {
  for (std::vector<int> bad :
       {std::vector<int>{}, {SIGKILL}, {SIGTERM, SIGSTOP}, {0}, {NSIG}}) {
    absl::StatusOr<std::unique_ptr<PreemptionWatcher>> w = PreemptionWatcher::Create(bad);
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument)
        << (bad.empty() ? -1 : bad.back());
  }
  // A refused list installed nothing and left no watcher behind.
  EXPECT_TRUE(PreemptionWatcher::Create().ok());
}

}  // namespace
}  // namespace meshckpt
