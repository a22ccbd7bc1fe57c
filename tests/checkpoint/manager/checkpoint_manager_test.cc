// CheckpointManager in one process (SerialCommunicator, one-device mesh):
// numbering, retention (max_to_keep, keep_checkpoint_every_n_hours), the
// state file, step intervals, recovery by a new manager, the sweep at
// creation, RestoreOrInitialize, option errors. Time comes from a fake clock.
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/checkpoint/manager/manager_fixture.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST_F(CheckpointManagerTest, NumbersWithTheSaveCounter) {
  auto run = NewJob();
  auto m = NewManager(*run, Options());
  EXPECT_EQ(m->directory(), dir_);
  EXPECT_THAT(m->checkpoints(), IsEmpty());
  EXPECT_EQ(m->latest_checkpoint(), std::nullopt);
  EXPECT_EQ(MustSave(*m), Ckpt(1));
  EXPECT_EQ(MustSave(*m), Ckpt(2));
  EXPECT_EQ(MustSave(*m, 10), Ckpt(10));  // Still bumps the counter...
  EXPECT_EQ(run->ckpt->save_counter(), 3);
  EXPECT_EQ(MustSave(*m), Ckpt(4));  // ...so numbering goes on from it.
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 2, 10, 4})));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(4));
  EXPECT_EQ(LatestCheckpoint(dir_).value(), Ckpt(4));

  // Overwriting a managed checkpoint moves it to the end.
  EXPECT_EQ(MustSave(*m, 2), Ckpt(2));
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 10, 4, 2})));

  absl::StatusOr<std::optional<std::string>> bad = m->Save(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

TEST_F(CheckpointManagerTest, MaxToKeepDeletesOldestAndStateListsTheRest) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.max_to_keep = 2;
  auto m = NewManager(*run, o);
  for (int i = 1; i <= 5; ++i) {
    now_ = kT0 + 10 * i;
    EXPECT_EQ(MustSave(*m), Ckpt(i));
    const int first = std::max(1, i - 1);
    std::vector<int> kept;
    for (int k = first; k <= i; ++k) kept.push_back(k);
    EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts(kept)));
    CheckpointState s = ReadCheckpointState(dir_).value();
    EXPECT_EQ(s.model_checkpoint_path, "ckpt-" + std::to_string(i));
    EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAreArray(Rel(kept)));
    std::vector<double> stamps;
    for (int k : kept) stamps.push_back(kT0 + 10 * k);
    EXPECT_THAT(s.all_model_checkpoint_timestamps, ElementsAreArray(stamps));
    for (int k = 1; k <= i; ++k) {
      const bool want = k >= first;
      EXPECT_EQ(CheckpointExists(Ckpt(k)), want) << k;
      EXPECT_EQ(FileExists(DataFilePath(Ckpt(k))), want) << k;
    }
  }
}

TEST_F(CheckpointManagerTest, MaxToKeepNulloptKeepsEverything) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.max_to_keep = std::nullopt;
  o.keep_checkpoint_every_n_hours = 1;  // Irrelevant when nothing leaves.
  auto m = NewManager(*run, o);
  for (int i = 1; i <= 7; ++i) {
    now_ += 3600 * i;
    MustSave(*m);
  }
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 2, 3, 4, 5, 6, 7})));
  EXPECT_THAT(ReadCheckpointState(dir_)->all_model_checkpoint_paths,
              ElementsAreArray(Rel({1, 2, 3, 4, 5, 6, 7})));
  for (int i = 1; i <= 7; ++i) EXPECT_TRUE(CheckpointExists(Ckpt(i))) << i;
}

TEST_F(CheckpointManagerTest, KeepCheckpointEveryNHoursPreserves) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.max_to_keep = 2;
  o.keep_checkpoint_every_n_hours = 1;
  auto m = NewManager(*run, o);  // last preserved: kT0 - 1.
  // Save times; with max_to_keep 2 a checkpoint leaves when the one two
  // later is saved. ckpt-4 (kT0+3700) is the first to leave at least an hour
  // after kT0-1; ckpt-5..6 are not an hour after ckpt-4.
  const std::vector<double> at = {0, 1000, 2000, 3700, 4000, 5000, 6000, 8000};
  for (size_t i = 0; i < at.size(); ++i) {
    now_ = kT0 + at[i];
    MustSave(*m);
  }
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({7, 8})));
  for (int i = 1; i <= 8; ++i) {
    EXPECT_EQ(CheckpointExists(Ckpt(i)), i == 4 || i >= 7) << i;
  }
  CheckpointState s = ReadCheckpointState(dir_).value();
  EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAreArray(Rel({7, 8})));
  EXPECT_EQ(s.last_preserved_timestamp, kT0 + 3700);

  // A later manager keeps the bookkeeping and never manages ckpt-4 again.
  now_ = kT0 + 9000;
  auto run2 = NewJob();
  auto m2 = NewManager(*run2, o);
  EXPECT_THAT(m2->checkpoints(), ElementsAreArray(Ckpts({7, 8})));
  ASSERT_TRUE(m2->RestoreOrInitialize(RestoreMatch::kAllMatched).ok());
  now_ = kT0 + 9100;
  EXPECT_EQ(MustSave(*m2), Ckpt(9));  // ckpt-7 leaves, 6000 < 3700 + 3600.
  EXPECT_FALSE(CheckpointExists(Ckpt(7)));
  EXPECT_TRUE(CheckpointExists(Ckpt(4)));
  now_ = kT0 + 9200;
  EXPECT_EQ(MustSave(*m2), Ckpt(10));  // ckpt-8 leaves, 8000 >= 7300: kept.
  EXPECT_TRUE(CheckpointExists(Ckpt(8)));
  EXPECT_THAT(m2->checkpoints(), ElementsAreArray(Ckpts({9, 10})));
  EXPECT_EQ(ReadCheckpointState(dir_)->last_preserved_timestamp, kT0 + 8000);
}

TEST_F(CheckpointManagerTest, StateFileIsWrittenBeforeDeleting) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.max_to_keep = 2;
  auto m = NewManager(*run, o);
  MustSave(*m);
  MustSave(*m);
  // Make deleting ckpt-1 fail: its index becomes a non-empty directory.
  ASSERT_TRUE(RemoveFileIfExists(IndexFilePath(Ckpt(1))).ok());
  ASSERT_EQ(::mkdir(IndexFilePath(Ckpt(1)).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((IndexFilePath(Ckpt(1)) + "/x").c_str(), 0755), 0);

  absl::StatusOr<std::optional<std::string>> p = m->Save();
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(Ckpt(1)));
  // The new checkpoint is committed and recorded; the state already lists
  // exactly what should remain.
  EXPECT_TRUE(CheckpointExists(Ckpt(3)));
  CheckpointState s = ReadCheckpointState(dir_).value();
  EXPECT_EQ(s.model_checkpoint_path, "ckpt-3");
  EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAreArray(Rel({2, 3})));
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({2, 3})));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(3));
}

TEST_F(CheckpointManagerTest, CheckpointIntervalSkipsSaves) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.step_counter = run->step;
  o.checkpoint_interval = 10;
  auto m = NewManager(*run, o);
  auto save_at = [&](int64_t step, bool check = true) -> std::optional<std::string> {
    EXPECT_TRUE(run->step->set(step).ok());
    absl::StatusOr<std::optional<std::string>> p = m->Save(std::nullopt, check);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : std::nullopt;
  };
  EXPECT_EQ(save_at(0), Ckpt(1));  // The first save always happens.
  EXPECT_EQ(save_at(5), std::nullopt);
  EXPECT_EQ(save_at(9), std::nullopt);
  EXPECT_EQ(save_at(10), Ckpt(2));
  EXPECT_EQ(save_at(10, false), std::nullopt);  // Already saved at this step.
  EXPECT_EQ(save_at(12, false), Ckpt(3));       // Interval not checked.
  EXPECT_EQ(save_at(21), std::nullopt);
  EXPECT_EQ(save_at(22), Ckpt(4));
  EXPECT_EQ(run->ckpt->save_counter(), 4);  // Skips do not count.
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 2, 3, 4})));
  // The step is recorded in the index.
  EXPECT_EQ(ReadCheckpointIndex(*comm_, Ckpt(3)).value().step, 12);
  EXPECT_EQ(ReadCheckpointIndex(*comm_, Ckpt(4)).value().step, 22);

  // After a restore the restored step counts as saved.
  auto run2 = NewJob();
  o.step_counter = run2->step;
  auto m2 = NewManager(*run2, o);
  ASSERT_EQ(m2->RestoreOrInitialize(RestoreMatch::kAllMatched).value().restored_from,
            Ckpt(4));
  EXPECT_EQ(run2->step->int64(), 22);
  EXPECT_EQ(m2->Save().value(), std::nullopt);
  ASSERT_TRUE(run2->step->set(int64_t{32}).ok());
  EXPECT_EQ(m2->Save().value(), Ckpt(5));
}

TEST_F(CheckpointManagerTest, NewManagerRecoversCheckpoints) {
  CheckpointManagerOptions o = Options();
  o.max_to_keep = 3;
  {
    auto run = NewJob();
    auto m = NewManager(*run, o);
    for (int i = 0; i < 4; ++i) {
      now_ += 60;
      MustSave(*m);
    }
    EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({2, 3, 4})));
  }
  auto run = NewJob();
  now_ += 60;
  auto m = NewManager(*run, o);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({2, 3, 4})));
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(4));
  ASSERT_EQ(m->RestoreOrInitialize(RestoreMatch::kAllMatched).value().restored_from,
            Ckpt(4));
  EXPECT_EQ(run->ckpt->save_counter(), 4);
  EXPECT_EQ(MustSave(*m), Ckpt(5));
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({3, 4, 5})));
  EXPECT_FALSE(CheckpointExists(Ckpt(2)));

  // A relative directory names the same place.
  const std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(root_);
  absl::StatusOr<std::unique_ptr<CheckpointManager>> rel =
      CheckpointManager::Create(run->ckpt.get(), "./run/", o);
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ((*rel)->directory(), dir_);
  EXPECT_THAT((*rel)->checkpoints(), ElementsAreArray(Ckpts({3, 4, 5})));
}

TEST_F(CheckpointManagerTest, RecoveryIgnoresMissingAndEscapingEntries) {
  auto run = NewJob();
  // A committed checkpoint outside the directory, which the state file names.
  ASSERT_TRUE(std::filesystem::create_directories(dir_));
  // ckpt-7 is committed before ckpt-1: the newest committed is the latest.
  ASSERT_TRUE(run->ckpt->Write(root_ + "/victim").ok());
  ASSERT_TRUE(run->ckpt->Write(Ckpt(7)).ok());
  ASSERT_TRUE(run->ckpt->Write(Ckpt(1)).ok());
  CheckpointState s;
  s.model_checkpoint_path = "../victim";
  // ckpt-7 is older than the last preserved checkpoint: preserved already,
  // so no longer managed (as in TF).
  s.all_model_checkpoint_paths.push_back("ckpt-7");
  s.all_model_checkpoint_timestamps.push_back(kT0 - 200);
  for (const std::string& p : {std::string("../victim"), root_ + "/victim",
                               std::string("ckpt-0"), std::string("ckpt-1")}) {
    s.all_model_checkpoint_paths.push_back(p);
    s.all_model_checkpoint_timestamps.push_back(kT0 - 10);
  }
  s.last_preserved_timestamp = kT0 - 100;
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());

  CheckpointManagerOptions o = Options();
  o.max_to_keep = 1;
  auto m = NewManager(*run, o);
  EXPECT_THAT(m->checkpoints(), ElementsAre(Ckpt(1)));  // ckpt-0 is not committed.
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(1));
  // Numbering skips the committed ckpt-1 instead of overwriting it.
  for (int i = 0; i < 3; ++i) MustSave(*m);
  EXPECT_TRUE(CheckpointExists(root_ + "/victim"));
  EXPECT_TRUE(CheckpointExists(Ckpt(7)));
  EXPECT_FALSE(CheckpointExists(Ckpt(1)));
  EXPECT_THAT(m->checkpoints(), ElementsAre(Ckpt(4)));
}

TEST_F(CheckpointManagerTest, GarbageStateFileManagesCheckpointsOnDisk) {
  auto run = NewJob();
  ASSERT_TRUE(std::filesystem::create_directories(dir_));
  ASSERT_TRUE(run->ckpt->Write(Ckpt(1)).ok());
  ASSERT_TRUE(run->ckpt->Write(Ckpt(2)).ok());
  ASSERT_TRUE(run->ckpt->Write(dir_ + "/other-1").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/checkpoint", "{{ not a proto").ok());
  CheckpointManagerOptions o = Options();
  o.max_to_keep = 2;
  auto m = NewManager(*run, o);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 2})));
  EXPECT_EQ(m->latest_checkpoint(), dir_ + "/other-1");  // Newest on disk.
  MustSave(*m, 3);
  EXPECT_FALSE(CheckpointExists(Ckpt(1)));
  EXPECT_TRUE(CheckpointExists(dir_ + "/other-1"));
  EXPECT_THAT(ReadCheckpointState(dir_)->all_model_checkpoint_paths,
              ElementsAreArray(Rel({2, 3})));
}

TEST_F(CheckpointManagerTest, CreateMakesDirectoryAndSweepsLeftovers) {
  auto run = NewJob();
  ASSERT_TRUE(std::filesystem::create_directories(dir_));
  ASSERT_TRUE(run->ckpt->Write(Ckpt(1)).ok());
  const std::vector<std::string> stale = {dir_ + "/ckpt-2.h5.partial-0123456789abcdef",
                                          dir_ + "/checkpoint.tmp-0123456789abcdef",
                                          dir_ + "/ckpt-3.h5"};
  for (const std::string& f : stale) ASSERT_TRUE(WriteFileAtomically(f, "x").ok());
  auto m = NewManager(*run, Options());
  for (const std::string& f : stale) EXPECT_FALSE(FileExists(f)) << f;
  EXPECT_TRUE(CheckpointExists(Ckpt(1)));

  const std::string nested = root_ + "/a/b/c";
  absl::StatusOr<std::unique_ptr<CheckpointManager>> n =
      CheckpointManager::Create(run->ckpt.get(), nested, Options());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(std::filesystem::is_directory(nested));
  EXPECT_EQ((*n)->Save().value(), nested + "/ckpt-1");

  ASSERT_TRUE(WriteFileAtomically(root_ + "/file", "x").ok());
  EXPECT_FALSE(
      CheckpointManager::Create(run->ckpt.get(), root_ + "/file", Options()).ok());
}

TEST_F(CheckpointManagerTest, RestoreOrInitialize) {
  auto run = NewJob();
  run->set_values({1, 2, 3, 4});
  auto m = NewManager(*run, Options());
  absl::StatusOr<RestoreResult> r = m->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, std::nullopt);
  EXPECT_FALSE(r->load_status.has_value());
  EXPECT_THAT(run->values(), ElementsAre(1, 2, 3, 4));  // Left as initialized.

  ASSERT_TRUE(run->step->set(int64_t{42}).ok());
  MustSave(*m);
  run->set_values({5, 6, 7, 8});
  ASSERT_TRUE(run->step->set(int64_t{43}).ok());
  MustSave(*m);

  auto run2 = NewJob();
  auto m2 = NewManager(*run2, Options());
  r = m2->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, Ckpt(2));
  ASSERT_TRUE(r->load_status.has_value());
  EXPECT_TRUE(r->load_status->AssertConsumed().ok());
  EXPECT_THAT(r->load_status->skipped_checkpoints(), IsEmpty());
  EXPECT_THAT(run2->values(), ElementsAre(5, 6, 7, 8));
  EXPECT_EQ(run2->step->int64(), 43);
  EXPECT_EQ(run2->ckpt->save_counter(), 2);
}

TEST_F(CheckpointManagerTest, IoOptionsReachSavesAndRestores) {
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  int saves = 0, restores = 0;
  bool restoring = false;
  o.io.emplace();
  o.io->progress = [&](int64_t done, int64_t total) {
    if (done == total) ++(restoring ? restores : saves);
  };
  auto m = NewManager(*run, o);
  MustSave(*m);
  EXPECT_GT(saves, 0);
  restoring = true;
  absl::StatusOr<RestoreResult> r = m->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(restores, 0);
}

TEST_F(CheckpointManagerTest, InvalidOptions) {
  auto run = NewJob();
  auto expect_invalid = [&](CheckpointManagerOptions o, const std::string& dir) {
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(run->ckpt.get(), dir, std::move(o));
    EXPECT_TRUE(absl::IsInvalidArgument(m.status())) << m.status();
  };
  expect_invalid(Options(), "");
  for (int keep : {0, -1}) {
    CheckpointManagerOptions o = Options();
    o.max_to_keep = keep;
    expect_invalid(o, dir_);
  }
  CheckpointManagerOptions o = Options();
  o.keep_checkpoint_every_n_hours = -1;
  expect_invalid(o, dir_);
  o = Options();
  o.checkpoint_interval = 5;  // No step counter.
  expect_invalid(o, dir_);
  o.step_counter = run->step;
  o.checkpoint_interval = -5;
  expect_invalid(o, dir_);
  auto not_int = TrackedValue::Create(1.5);
  o = Options();
  o.step_counter = not_int.get();
  expect_invalid(o, dir_);
  for (const char* name : {"", "a/b", ".hidden", "x.tmp-1", "x.partial-1", "x.h5"}) {
    o = Options();
    o.checkpoint_name = name;
    expect_invalid(o, dir_);
    o = Options();
    o.latest_filename = name;
    expect_invalid(o, dir_);
  }
  EXPECT_TRUE(absl::IsInvalidArgument(
      CheckpointManager::Create(nullptr, dir_, Options()).status()));
  EXPECT_FALSE(std::filesystem::exists(dir_));  // Nothing was created.
}

}  // namespace
}  // namespace meshckpt
