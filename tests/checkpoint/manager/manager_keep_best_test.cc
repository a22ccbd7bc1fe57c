// CheckpointManager keep_best in one process: the best checkpoints by the
// metric given to Save stay besides the newest max_to_keep (min and max
// mode), the newest is never deleted, checkpoints without a metric stay only
// by recency, a new manager over the directory knows the earlier metrics
// (from the indexes), and the state file stays TensorFlow's CheckpointState.
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "tests/checkpoint/manager/manager_fixture.h"
#include "tests/checkpoint/state/tf_checkpoint_state.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAreArray;

class KeepBestTest : public CheckpointManagerTest {
 protected:
  CheckpointManagerOptions BestOptions(int max_to_keep, int keep_best, BestMode mode) {
    CheckpointManagerOptions o = Options();
    o.max_to_keep = max_to_keep;
    o.keep_best = keep_best;
    o.best_mode = mode;
    return o;
  }
  std::string SaveWith(CheckpointManager& m, std::optional<double> metric) {
    now_ += 10;
    absl::StatusOr<std::optional<std::string>> p = m.Save(std::nullopt, true, metric);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() && p->has_value() ? **p : "";
  }
  // On disk: exactly `kept` of ckpt-1..ckpt-n.
  void ExpectOnDisk(int n, const std::vector<int>& kept) {
    for (int i = 1; i <= n; ++i) {
      const bool want = std::find(kept.begin(), kept.end(), i) != kept.end();
      EXPECT_EQ(CheckpointExists(Ckpt(i)), want) << Ckpt(i);
    }
  }
};

TEST_F(KeepBestTest, MinModeKeepsTheLowestMetricsAndTheNewest) {
  auto run = NewJob();
  auto m = NewManager(*run, BestOptions(1, 2, BestMode::kMin));
  const double loss[] = {0.9, 0.4, 0.7, 0.2, 0.8, 0.6};
  for (double l : loss) SaveWith(*m, l);
  // Best two: ckpt-4 (0.2), ckpt-2 (0.4); newest: ckpt-6.
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({2, 4, 6})));
  ExpectOnDisk(6, {2, 4, 6});
  EXPECT_EQ(ReadCheckpointMetric(Ckpt(4)).value(), 0.2);
  // The state file lists them, and TensorFlow's parser reads it.
  TfCheckpointStateParser tf;
  std::optional<CheckpointState> state =
      tf.ParseToState(ReadFileBytes(dir_ + "/checkpoint"));
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->model_checkpoint_path, "ckpt-6");
  EXPECT_THAT(state->all_model_checkpoint_paths, ElementsAreArray(Rel({2, 4, 6})));
  EXPECT_EQ(state->all_model_checkpoint_timestamps.size(), 3u);
}

TEST_F(KeepBestTest, MaxModeKeepsTheHighestAndTheNewestEvenWhenWorst) {
  auto run = NewJob();
  auto m = NewManager(*run, BestOptions(1, 1, BestMode::kMax));
  SaveWith(*m, 0.5);
  SaveWith(*m, 0.9);
  SaveWith(*m, 0.1);  // The worst, but the newest.
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({2, 3})));
  ExpectOnDisk(3, {2, 3});
  SaveWith(*m, 0.9);  // Ties the best: the newer wins.
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({4})));
  ExpectOnDisk(4, {4});
}

TEST_F(KeepBestTest, CheckpointsWithoutAMetricStayOnlyByRecency) {
  auto run = NewJob();
  auto m = NewManager(*run, BestOptions(2, 1, BestMode::kMin));
  SaveWith(*m, 0.1);
  SaveWith(*m, std::nullopt);
  SaveWith(*m, std::nullopt);
  SaveWith(*m, std::nullopt);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 3, 4})));
  ExpectOnDisk(4, {1, 3, 4});
  // The metric went into ckpt-1's index only, not into later ones.
  EXPECT_EQ(ReadCheckpointMetric(Ckpt(1)).value(), 0.1);
  EXPECT_EQ(ReadCheckpointMetric(Ckpt(4)).value(), std::nullopt);
}

TEST_F(KeepBestTest, ANewManagerKnowsTheEarlierMetrics) {
  {
    auto run = NewJob();
    auto m = NewManager(*run, BestOptions(1, 1, BestMode::kMin));
    SaveWith(*m, 0.3);
    SaveWith(*m, 0.8);
    SaveWith(*m, 0.9);
    EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 3})));
  }
  auto run = NewJob();
  auto m = NewManager(*run, BestOptions(1, 1, BestMode::kMin));
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 3})));
  ASSERT_EQ(m->RestoreOrInitialize(RestoreMatch::kAllMatched).value().restored_from,
            Ckpt(3));
  // ckpt-1 (0.3) is still the best: ckpt-3 leaves, not ckpt-1.
  SaveWith(*m, 0.5);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 4})));
  ExpectOnDisk(4, {1, 4});
  SaveWith(*m, 0.2);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({5})));
  ExpectOnDisk(5, {5});
}

TEST_F(KeepBestTest, BestCheckpointsOlderThanTheLastPreservedStayManaged) {
  {
    auto run = NewJob();
    CheckpointManagerOptions o = BestOptions(1, 1, BestMode::kMin);
    o.keep_checkpoint_every_n_hours = 1;
    auto m = NewManager(*run, o);
    SaveWith(*m, 0.1);  // The best throughout.
    now_ += 7200;
    SaveWith(*m, 0.5);
    now_ += 7200;
    SaveWith(*m, 0.6);  // ckpt-2 leaves and is preserved (after ckpt-1).
    EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 3})));
    ExpectOnDisk(3, {1, 2, 3});
  }
  auto run = NewJob();
  CheckpointManagerOptions o = BestOptions(1, 1, BestMode::kMin);
  o.keep_checkpoint_every_n_hours = 1;
  auto m = NewManager(*run, o);
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 3})));
}

TEST_F(KeepBestTest, InvalidKeepBestAndMetric) {
  auto run = NewJob();
  absl::StatusOr<std::unique_ptr<CheckpointManager>> bad = CheckpointManager::Create(
      run->ckpt.get(), dir_, BestOptions(1, -1, BestMode::kMin));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  auto m = NewManager(*run, BestOptions(1, 1, BestMode::kMin));
  for (double metric : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    absl::StatusOr<std::optional<std::string>> p = m->Save(std::nullopt, true, metric);
    EXPECT_TRUE(absl::IsInvalidArgument(p.status())) << p.status();
  }
  EXPECT_EQ(m->latest_checkpoint(), std::nullopt);
  EXPECT_EQ(run->ckpt->save_counter(), 0);
}

}  // namespace
}  // namespace meshckpt
