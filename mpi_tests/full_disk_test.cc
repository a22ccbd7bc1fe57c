// Full disk: a CheckpointManager saves into a small filesystem (an 8 MiB
// tmpfs this test mounts, when it runs as root and mounting is allowed;
// otherwise it is skipped with a message saying why) until a save fails.
// Then: the failing save returned the same error on every rank; every
// committed checkpoint verifies; LatestCheckpoint and the state file name the
// last good one (or the failing one, when only the state file could not be
// written), which restores bit-exactly; no partial checkpoint is visible; a
// new manager sweeps what the failed save left; once space is freed, saving
// works again. Three model sizes make the save fail at different points.
//
// Works in --dir=<dir>/np<N>/mnt.
#include <memory>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/fs.h"
#include "mpi_tests/full_disk_util.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

using test::Leftovers;

std::string MountPoint() {
  static const std::string* dir =
      new std::string(test::WorkPath("full_disk_work", TestWorld().size(), "mnt"));
  return *dir;
}

// (rows, transfer mode): the default direct writes and parallel HDF5's
// MPI-IO path, where a full disk inside a collective call would hang.
class FullDiskTest : public ::testing::TestWithParam<std::tuple<int64_t, TransferMode>> {
 protected:
  void SetUp() override {
    const std::string why = test::MountTmpfs(world_, MountPoint(), "8m");
    if (!why.empty()) {
      GTEST_SKIP() << "SKIPPED full-disk test: " << why;
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) test::UnmountTmpfs(world_, MountPoint());
  }

  Communicator& world_ = TestWorld();
  bool mounted_ = false;
};

TEST_P(FullDiskTest, SavesUntilFullThenEverythingStillHolds) {
  const std::string dir = MountPoint() + "/run";
  const int64_t rows = std::get<0>(GetParam());
  auto m = test::BuildDiskModel(world_, rows);
  CheckpointManagerOptions o;
  o.io = IoOptions();
  o.io->transfer_mode = std::get<1>(GetParam());
  o.max_to_keep = std::nullopt;  // Keep everything: the disk fills.
  o.step_counter = m->step;
  absl::StatusOr<std::unique_ptr<CheckpointManager>> manager =
      CheckpointManager::Create(m->ckpt.get(), dir, o);
  ASSERT_TRUE(manager.ok()) << manager.status();

  int64_t last_good = 0;
  absl::Status failure;
  for (int64_t step = 1; step <= 100; ++step) {
    test::SetDiskStep(world_, *m, step);
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    EXPECT_EQ(test::DescribeStatusDisagreement(world_, saved.status()), "");
    if (!saved.ok()) {
      failure = saved.status();
      break;
    }
    last_good = step;
  }
  ASSERT_FALSE(failure.ok()) << "8 MiB never filled up";
  if (world_.rank() == 0) {
    std::printf("rows=%lld %s: %lld saves fit, then: %s\n", static_cast<long long>(rows),
                std::get<1>(GetParam()) == TransferMode::kDirect ? "direct" : "mpi-io",
                static_cast<long long>(last_good), failure.ToString().c_str());
  }
  // Only the state file failed: the new checkpoint is committed, and the
  // error says so ("saved '...', then: ...").
  const bool committed_anyway = absl::StrContains(failure.message(), "', then: ");

  // What is on disk, seen by rank 0.
  std::string latest, problems;
  if (world_.rank() == 0) {
    absl::StatusOr<std::string> l = LatestCheckpoint(dir);
    if (l.ok())
      latest = *l;
    else
      absl::StrAppend(&problems, "LatestCheckpoint: ", l.status().ToString(), "; ");
    for (const std::string& p : ListCommittedCheckpoints(dir)) {
      absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(p);
      absl::StatusOr<std::vector<std::string>> v =
          r.ok() ? (*r)->VerifyAll()
                 : absl::StatusOr<std::vector<std::string>>(r.status());
      if (!v.ok() || !v->empty())
        absl::StrAppend(&problems, "committed ", p, " is damaged; ");
    }
    const std::string after = Leftovers(dir);
    if (absl::StrContains(after, ".partial-")) {
      absl::StrAppend(&problems, "partial files after the failed save: ", after, "; ");
    }
    if (!after.empty()) std::printf("left by the failed save: %s\n", after.c_str());
  }
  world_.Broadcast(&latest, 0);
  world_.Broadcast(&problems, 0);
  EXPECT_EQ(problems, "");
  const std::string want = absl::StrCat(dir, "/ckpt-", last_good);
  if (committed_anyway) {
    EXPECT_TRUE(latest == want || latest == absl::StrCat(dir, "/ckpt-", last_good + 1))
        << latest;
  } else {
    EXPECT_EQ(latest, want);
  }
  ASSERT_FALSE(latest.empty());

  // The previous checkpoint is intact and restores (bit-exactly).
  test::SetDiskStep(world_, *m, 999);
  absl::StatusOr<LoadStatus> st = m->ckpt->Restore(latest);
  EXPECT_EQ(test::DescribeStatusDisagreement(world_, st.status()), "");
  ASSERT_TRUE(st.ok()) << st.status();
  const int64_t restored = m->step->int64();
  EXPECT_EQ(test::CountWrongAtStep(world_, *m, restored), 0) << "restored " << latest;
  EXPECT_EQ(absl::StrCat(dir, "/ckpt-", restored), latest);

  // Free space, restart: the new manager sweeps, and saving works again.
  if (world_.rank() == 0) {
    for (const std::string& p : ListCommittedCheckpoints(dir)) {
      if (p != latest) (void)DeleteCheckpoint(p);
    }
  }
  world_.Barrier();
  absl::StatusOr<std::unique_ptr<CheckpointManager>> again =
      CheckpointManager::Create(m->ckpt.get(), dir, o);
  ASSERT_TRUE(again.ok()) << again.status();
  std::string after;
  if (world_.rank() == 0) after = Leftovers(dir);
  world_.Broadcast(&after, 0);
  EXPECT_EQ(after, "") << "not swept";
  EXPECT_EQ((*again)->latest_checkpoint(), latest);
  test::SetDiskStep(world_, *m, restored + 1);
  absl::StatusOr<std::optional<std::string>> saved = (*again)->Save();
  EXPECT_EQ(test::DescribeStatusDisagreement(world_, saved.status()), "");
  // The largest model cannot fit twice: that save fails again, cleanly.
  std::string now;
  if (world_.rank() == 0) now = LatestCheckpoint(dir).value_or("");
  world_.Broadcast(&now, 0);
  if (rows * 256 * 4 * 2 < (int64_t{7} << 20)) {
    EXPECT_TRUE(saved.ok()) << saved.status();
    EXPECT_EQ(now, absl::StrCat(dir, "/ckpt-", restored + 1));
  } else {
    EXPECT_EQ(now, latest) << "after " << saved.status();
  }
}

// Rows of a [rows, 256] float32 (+ [rows] float64): ~0.5, ~1.9 and ~6.3 MiB
// per checkpoint.
INSTANTIATE_TEST_SUITE_P(
    ModelSizes, FullDiskTest,
    ::testing::Combine(::testing::Values(500, 1900, 6400),
                       ::testing::Values(TransferMode::kDirect,
                                         TransferMode::kIndependent)));

}  // namespace
}  // namespace meshckpt
