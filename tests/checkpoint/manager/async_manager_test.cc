// Async saves through CheckpointManager and DTensorCheckpoint: values as of
// the call, numbering, the state file and retention after the commit, and
// errors of the background part returned by the next call.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/testing/fault_injector.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "tests/checkpoint/manager/manager_fixture.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAreArray;

CheckpointManagerOptions Async(CheckpointManagerOptions o) {
  o.async_save = AsyncSaveOptions();
  return o;
}

TEST_F(CheckpointManagerTest, AsyncSavesHoldTheValuesOfTheCallAndApplyRetention) {
  auto job = NewJob();
  CheckpointManagerOptions o = Async(Options());
  o.max_to_keep = 2;
  o.step_counter = job->step;
  auto m = NewManager(*job, o);
  for (int i = 1; i <= 4; ++i) {
    job->set_values({1.f * i, 2.f * i, 3.f * i, 4.f * i});
    ASSERT_TRUE(job->step->set(int64_t{10 * i}).ok());
    EXPECT_EQ(MustSave(*m), Ckpt(i));
    if (i > 1) {  // The save before, waited for by this one, reused staging.
      EXPECT_EQ(job->ckpt->last_async_stats().allocated_staging, i == 2) << i;
    }
    job->set_values({-1, -1, -1, -1});  // The next step, at once.
    ASSERT_TRUE(job->step->set(int64_t{-1}).ok());
  }
  ASSERT_TRUE(m->WaitUntilFinished().ok());
  EXPECT_EQ(m->checkpoints(), Ckpts({3, 4}));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(4));
  EXPECT_FALSE(FileExists(IndexFilePath(Ckpt(2))));  // Retention ran.
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->model_checkpoint_path, "ckpt-4");
  EXPECT_THAT(state->all_model_checkpoint_paths, ElementsAreArray(Rel({3, 4})));

  auto back = NewJob();
  for (int i : {3, 4}) {
    ASSERT_TRUE(back->ckpt->Restore(Ckpt(i)).ok());
    EXPECT_EQ(back->values(), std::vector<float>({1.f * i, 2.f * i, 3.f * i, 4.f * i}));
    EXPECT_EQ(back->step->int64(), 10 * i);
    EXPECT_EQ(back->ckpt->save_counter(), i);
  }
}

TEST_F(CheckpointManagerTest, AsyncSaveIsCommittedWithoutAnyFurtherCall) {
  auto job = NewJob();
  auto m = NewManager(*job, Async(Options()));
  job->set_values({5, 6, 7, 8});
  MustSave(*m);
  // Nobody waits: the background thread commits on its own.
  for (int i = 0; i < 2000 && !FileExists(IndexFilePath(Ckpt(1))); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(FileExists(IndexFilePath(Ckpt(1))));
  EXPECT_TRUE(m->WaitUntilFinished().ok());
}

TEST_F(CheckpointManagerTest, DestroyingTheManagerFinishesTheSave) {
  auto job = NewJob();
  {
    auto m = NewManager(*job, Async(Options()));
    job->set_values({5, 6, 7, 8});
    MustSave(*m);
  }
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->model_checkpoint_path, "ckpt-1");
  auto m = NewManager(*job, Options());
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(1));
}

TEST_F(CheckpointManagerTest, AsyncSaveErrorsComeBackFromTheNextCall) {
  auto job = NewJob();
  CheckpointManagerOptions o = Async(Options());
  o.io = IoOptions();
  o.io->transfer_mode = TransferMode::kCollective;  // Not async-capable.
  absl::StatusOr<std::unique_ptr<CheckpointManager>> bad =
      CheckpointManager::Create(job->ckpt.get(), dir_, o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  IoOptions collective;
  collective.transfer_mode = TransferMode::kCollective;
  ASSERT_TRUE(std::filesystem::create_directories(root_));
  absl::StatusOr<std::string> p = job->ckpt->SaveAsync(root_ + "/x", &collective);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_EQ(job->ckpt->save_counter(), 0);  // Given back.

  // A background failure: the state file cannot be written (a directory
  // took its name). The checkpoint itself is committed.
  auto job2 = NewJob();
  const std::string dir2 = root_ + "/blocked";
  ASSERT_TRUE(std::filesystem::create_directories(dir2 + "/checkpoint"));
  absl::StatusOr<std::string> path = job2->ckpt->SaveAsync(dir2 + "/x");
  ASSERT_TRUE(path.ok()) << path.status();
  absl::StatusOr<std::string> next = job2->ckpt->SaveAsync(dir2 + "/x");
  EXPECT_FALSE(next.ok());  // The first one's error, from the next call.
  EXPECT_THAT(next.status().message(), ::testing::HasSubstr("checkpoint"));
  EXPECT_TRUE(FileExists(IndexFilePath(*path)));
  EXPECT_FALSE(FileExists(IndexFilePath(dir2 + "/x-2")));  // Not started.
  EXPECT_TRUE(job2->ckpt->WaitUntilFinished().ok());       // Reported once.
}

TEST_F(CheckpointManagerTest, DTensorCheckpointSaveAsyncNumbersAndRecords) {
  auto job = NewJob();
  ASSERT_TRUE(std::filesystem::create_directories(dir_));
  job->set_values({1, 2, 3, 4});
  absl::StatusOr<std::string> p1 = job->ckpt->SaveAsync(dir_ + "/model");
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_TRUE(job->ckpt->save_in_flight());
  job->set_values({9, 9, 9, 9});
  absl::StatusOr<std::string> p2 = job->ckpt->SaveAsync(dir_ + "/model");
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(*p1, dir_ + "/model-1");
  EXPECT_EQ(*p2, dir_ + "/model-2");
  ASSERT_TRUE(job->ckpt->WaitUntilFinished().ok());
  EXPECT_FALSE(job->ckpt->save_in_flight());
  EXPECT_GT(job->ckpt->last_async_stats().durable_seconds, 0);
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/model-2");

  auto back = NewJob();
  ASSERT_TRUE(back->ckpt->Restore(*p1).ok());
  EXPECT_EQ(back->values(), std::vector<float>({1, 2, 3, 4}));
  EXPECT_EQ(back->ckpt->save_counter(), 1);
  ASSERT_TRUE(back->ckpt->Restore(*p2).ok());
  EXPECT_EQ(back->values(), std::vector<float>({9, 9, 9, 9}));
}

// The background part fails before the commit: its data file's directory
// is renamed away once the data is fsynced. The error comes back from the
// next call, nothing is committed, the save counter and the manager's books
// are as before the save, and the next manager sweeps the temporary.
TEST_F(CheckpointManagerTest, AsyncSaveThatNeverCommitsGivesEverythingBack) {
  auto job = NewJob();
  auto m = NewManager(*job, Async(Options()));
  MustSave(*m);
  ASSERT_TRUE(m->WaitUntilFinished().ok());
  const std::string moved = root_ + "/moved";
  SetFaultCallbackForTesting([&](absl::string_view point, int) {
    if (point == "after_flush") std::filesystem::rename(dir_, moved);
  });
  EXPECT_EQ(MustSave(*m), Ckpt(2));  // Started fine.
  const absl::Status s = m->WaitUntilFinished();
  SetFaultCallbackForTesting(nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::HasSubstr("ckpt-2"));
  EXPECT_FALSE(job->ckpt->last_async_stats().committed);
  EXPECT_EQ(job->ckpt->save_counter(), 1);  // Given back.
  EXPECT_EQ(m->checkpoints(), Ckpts({1}));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(1));
  std::filesystem::rename(moved, dir_);
  EXPECT_FALSE(FileExists(IndexFilePath(Ckpt(2))));
  // The temporary could not be removed where it was: the next manager
  // sweeps it.
  m.reset();
  m = NewManager(*job, Async(Options()));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(1));
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().string().find(".partial-"), std::string::npos) << e.path();
  }
}

// Committed, but the state file could not be written: the error comes back
// from the next call, and the manager lists the checkpoint, as a
// synchronous save does.
TEST_F(CheckpointManagerTest, AsyncSaveCommittedButNotRecorded) {
  auto job = NewJob();
  auto m = NewManager(*job, Async(Options()));
  ASSERT_TRUE(std::filesystem::create_directories(dir_ + "/checkpoint"));
  EXPECT_EQ(MustSave(*m), Ckpt(1));
  absl::Status s = m->WaitUntilFinished();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(job->ckpt->last_async_stats().committed);
  EXPECT_EQ(m->checkpoints(), Ckpts({1}));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(1));
  EXPECT_EQ(job->ckpt->save_counter(), 1);
}

TEST_F(CheckpointManagerTest, AsyncSaveCarriesTheMetricOfItsOwnCall) {
  auto job = NewJob();
  CheckpointManagerOptions o = Async(Options());
  o.keep_best = 1;
  o.max_to_keep = 1;
  auto m = NewManager(*job, o);
  absl::StatusOr<std::optional<std::string>> p = m->Save(std::nullopt, true, 0.25);
  ASSERT_TRUE(p.ok()) << p.status();
  MustSave(*m);  // No metric.
  p = m->Save(std::nullopt, true, 0.75);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(m->WaitUntilFinished().ok());
  EXPECT_EQ(ReadCheckpointMetric(Ckpt(1)).value(), 0.25);
  EXPECT_EQ(ReadCheckpointMetric(Ckpt(3)).value(), 0.75);
  EXPECT_FALSE(FileExists(IndexFilePath(Ckpt(2))));  // Neither newest nor best.
  EXPECT_EQ(m->checkpoints(), Ckpts({1, 3}));        // Best (min) and newest.
}

}  // namespace
}  // namespace meshckpt
