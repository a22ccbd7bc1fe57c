// Tests of the shared retention (checkpoint/state/retention.h): both
// preservation rules, max_to_keep 0 / n / all, the state file's content and
// directory, write-then-delete and its errors, reading a list back, and
// keep_best by a metric (min and max, ties, no metric, a list rebuilt after
// a restart).
#include "meshckpt/checkpoint/state/retention.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/path.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr double kHour = 3600;

TEST(RetentionListTest, MaxToKeepDeletesOldestFirst) {
  RetentionList list(RetentionPolicy{2});
  EXPECT_THAT(list.Add("d/c-1", 1), IsEmpty());
  EXPECT_THAT(list.Add("d/c-2", 2), IsEmpty());
  EXPECT_THAT(list.Add("d/c-3", 3), ElementsAre("d/c-1"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("d/c-2", "d/c-3"));
  // Saved again (spelled otherwise): moves to the end, not listed twice.
  EXPECT_THAT(list.Add("./d//c-2", 4), IsEmpty());
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("d/c-3", "./d//c-2"));
  EXPECT_EQ(list.listed()[1].timestamp, 4);
  // A list longer than max_to_keep (set from outside) sheds several at once.
  list.set_listed({{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}});
  EXPECT_THAT(list.Add("e", 5), ElementsAre("a", "b", "c"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("d", "e"));
}

TEST(RetentionListTest, NulloptKeepsAllAndZeroListsNothing) {
  RetentionList all(RetentionPolicy{std::nullopt, 1});
  for (int i = 0; i < 5; ++i)
    EXPECT_THAT(all.Add("c-" + std::to_string(i), i * kHour), IsEmpty());
  EXPECT_EQ(all.listed().size(), 5u);
  EXPECT_EQ(all.preserved(), 0);  // Nothing left, so nothing was preserved.

  RetentionList none(RetentionPolicy{0, 1, PreservationRule::kFixedPeriods});
  none.set_listed({{"old", 1}});
  EXPECT_THAT(none.Add("c-1", 10 * kHour), IsEmpty());
  EXPECT_THAT(none.ListedPrefixes(), ElementsAre("old"));  // Untouched.
}

TEST(RetentionListTest, SinceLastPreservedRule) {
  // CheckpointManager's: at least an hour after the last preserved one,
  // which then moves to the preserved checkpoint's time.
  RetentionList list(RetentionPolicy{1, 1, PreservationRule::kSinceLastPreserved}, -1);
  const double t[] = {0, 3599, 3700, 7250, 7300, 11000};
  std::vector<std::string> deleted;
  for (int i = 0; i < 6; ++i) {
    for (const std::string& p : list.Add("c-" + std::to_string(i), t[i]))
      deleted.push_back(p);
  }
  // c-0 (0 - 3600 < -1) deleted; c-1 (3599 >= -1 + 3600) preserved, last
  // 3599; c-2 (3700 < 7199) deleted; c-3 (7250 >= 7199) preserved, last
  // 7250; c-4 (7300) deleted.
  EXPECT_THAT(deleted, ElementsAre("c-0", "c-2", "c-4"));
  EXPECT_EQ(list.preserved(), 7250);
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-5"));
}

TEST(RetentionListTest, FixedPeriodsRule) {
  // The Saver's: later than the period's start + an hour; the next period
  // starts an hour later, whatever the preserved checkpoint's time.
  RetentionList list(RetentionPolicy{1, 1, PreservationRule::kFixedPeriods}, 0);
  const double t[] = {100, 3600, 3700, 7250, 7300, 11000};
  std::vector<std::string> deleted;
  for (int i = 0; i < 6; ++i) {
    for (const std::string& p : list.Add("c-" + std::to_string(i), t[i]))
      deleted.push_back(p);
  }
  // c-0 deleted; c-1 (3600, not later than 3600) deleted; c-2 (3700 > 3600)
  // preserved, next 7200; c-3 (7250 > 7200) preserved, next 10800; c-4
  // (7300) deleted. The other rule would delete c-3 (7250 < 3700 + 3600).
  EXPECT_THAT(deleted, ElementsAre("c-0", "c-1", "c-4"));
  EXPECT_EQ(list.preserved(), 2 * kHour);
}

TEST(RetentionListTest, NothingIsPreservedWithoutAPositivePeriod) {
  for (PreservationRule rule :
       {PreservationRule::kSinceLastPreserved, PreservationRule::kFixedPeriods}) {
    RetentionList list(RetentionPolicy{1, 0, rule}, -1e9);
    EXPECT_THAT(list.Add("a", 1e9), IsEmpty());
    EXPECT_THAT(list.Add("b", 2e9), ElementsAre("a"));
    EXPECT_EQ(list.preserved(), -1e9);
  }
  // An infinite period never preserves either.
  RetentionList never(RetentionPolicy{1, std::numeric_limits<double>::infinity(),
                                      PreservationRule::kFixedPeriods},
                      0);
  never.Add("a", 1e12);
  EXPECT_THAT(never.Add("b", 2e12), ElementsAre("a"));
}

TEST(StateFileDirectoryTest, IsWhereTheCheckpointFilesAre) {
  EXPECT_EQ(StateFileDirectory("/ckpt"), "/");  // Not "" (the working directory).
  EXPECT_EQ(StateFileDirectory("/ckpt-1"), "/");
  EXPECT_EQ(StateFileDirectory("ckpt-1"), ".");
  EXPECT_EQ(StateFileDirectory("./ckpt-1"), ".");
  EXPECT_EQ(StateFileDirectory("/tmp/x/ckpt-1"), "/tmp/x");
  EXPECT_EQ(StateFileDirectory("run//ckpt-1"), "run");
  EXPECT_EQ(StateFileDirectory("../run/ckpt-1"), "../run");
}

TEST(StateFilePathTest, RelativeInsideTheDirectoryElseAbsolute) {
  EXPECT_EQ(StateFilePath("/", "/ckpt-1", true).value(), "ckpt-1");
  EXPECT_EQ(StateFilePath("/", "/ckpt-1", false).value(), "/ckpt-1");
  EXPECT_EQ(StateFilePath("/d/run", "/d/run/ckpt-1", true).value(), "ckpt-1");
  EXPECT_EQ(StateFilePath("/d/run", "/d/other/ckpt-1", true).value(), "/d/other/ckpt-1");
  EXPECT_EQ(StateFilePath("/d/run", "/d/run//./ckpt-1", false).value(), "/d/run/ckpt-1");
  // Relative prefixes and directories meet through the working directory.
  const std::string cwd = CurrentDirectory().value();
  EXPECT_EQ(StateFilePath(".", "ckpt-1", true).value(), "ckpt-1");
  EXPECT_EQ(StateFilePath(".", "ckpt-1", false).value(), JoinPath(cwd, "ckpt-1"));
  EXPECT_EQ(StateFilePath(cwd, "ckpt-1", true).value(), "ckpt-1");
  EXPECT_EQ(StateFilePath(".", JoinPath(cwd, "ckpt-1"), true).value(), "ckpt-1");
}

class RetentionFilesTest : public ::testing::Test {
 protected:
  ~RetentionFilesTest() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void MakeCheckpoint(const std::string& prefix) {
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    std::vector<float> data = {1, 2};
    SaveTensor t{"w",          "", DType::kFloat32, {2}, Layout::Replicated(mesh, 1),
                 {data.data()}};
    ASSERT_TRUE(SaveTensors(*comm_, prefix, {t}, {}, {}).ok());
  }
  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string dir_ = [] {
    std::string d = "/tmp/meshckpt_retention_" + RandomId();
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0);
    return d;
  }();
};

TEST_F(RetentionFilesTest, StateAfterSaveListsTheNewestLast) {
  RetentionList list(RetentionPolicy{2, 1, PreservationRule::kSinceLastPreserved}, 50);
  list.Add(P("c-1"), 100);
  list.Add(P("c-2"), 200);
  CheckpointState s = StateAfterSave({dir_}, list, {P("c-2"), 200}).value();
  EXPECT_EQ(s.model_checkpoint_path, "c-2");
  EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAre("c-1", "c-2"));
  EXPECT_THAT(s.all_model_checkpoint_timestamps, ElementsAre(100, 200));
  EXPECT_EQ(s.last_preserved_timestamp, 50);

  // The Saver's rule records no last_preserved_timestamp, and with
  // max_to_keep 0 only the newest is listed.
  RetentionList none(RetentionPolicy{0, 1, PreservationRule::kFixedPeriods}, 50);
  none.Add(P("m-3"), 300);
  s = StateAfterSave({dir_, "checkpoint", /*relative_paths=*/false}, none,
                     {P("m-3"), 300})
          .value();
  EXPECT_EQ(s.model_checkpoint_path, P("m-3"));
  EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAre(P("m-3")));
  EXPECT_THAT(s.all_model_checkpoint_timestamps, ElementsAre(300));
  EXPECT_EQ(s.last_preserved_timestamp, 0);
}

TEST_F(RetentionFilesTest, RecordSaveWritesTheStateFileThenDeletes) {
  for (int i = 1; i <= 3; ++i) MakeCheckpoint(P("c-" + std::to_string(i)));
  RetentionList list(RetentionPolicy{1});
  list.Add(P("c-1"), 1);
  list.Add(P("c-2"), 2);  // c-1 leaves; a caller that crashed kept it.
  std::vector<std::string> doomed = list.Add(P("c-3"), 3);
  ASSERT_THAT(doomed, ElementsAre(P("c-2")));
  doomed.push_back(P("c-1"));
  doomed.push_back(dir_ + "//./c-3");  // The new one, spelled otherwise: kept.
  ASSERT_TRUE(RecordSave({dir_, "state"}, list, {P("c-3"), 3}, doomed).ok());
  EXPECT_FALSE(CheckpointExists(P("c-1")));
  EXPECT_FALSE(FileExists(DataFilePath(P("c-2"))));
  EXPECT_TRUE(CheckpointExists(P("c-3")));
  const CheckpointState s = ReadCheckpointState(dir_, "state").value();
  EXPECT_EQ(s.model_checkpoint_path, "c-3");
  EXPECT_THAT(s.all_model_checkpoint_paths, ElementsAre("c-3"));
  EXPECT_FALSE(FileExists(P("checkpoint")));
}

TEST_F(RetentionFilesTest, ErrorsSayTheCheckpointWasSaved) {
  MakeCheckpoint(P("c-1"));
  MakeCheckpoint(P("c-2"));
  RetentionList list(RetentionPolicy{1});
  list.Add(P("c-1"), 1);
  // Deleting c-1 fails: its index is a non-empty directory.
  ASSERT_TRUE(RemoveFileIfExists(IndexFilePath(P("c-1"))).ok());
  ASSERT_EQ(::mkdir(IndexFilePath(P("c-1")).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((IndexFilePath(P("c-1")) + "/x").c_str(), 0755), 0);
  const std::vector<std::string> doomed = list.Add(P("c-2"), 2);
  absl::Status s = RecordSave({dir_}, list, {P("c-2"), 2}, doomed);
  EXPECT_THAT(std::string(s.message()), HasSubstr("saved '" + P("c-2") + "', then: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr(P("c-1")));
  // The state file was written first.
  EXPECT_EQ(ReadCheckpointState(dir_)->model_checkpoint_path, "c-2");

  // A state file that cannot be written: nothing is deleted.
  MakeCheckpoint(P("c-3"));
  s = RecordSave({dir_ + "/missing"}, list, {P("c-3"), 3}, {P("c-2")});
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("saved '" + P("c-3") + "', then: "));
  EXPECT_TRUE(CheckpointExists(P("c-2")));
}

TEST_F(RetentionFilesTest, RetainedFromStateKeepsWhatIsStillInside) {
  const std::string outside = dir_ + "-outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  MakeCheckpoint(outside + "/victim");
  MakeCheckpoint(P("c-1"));
  MakeCheckpoint(P("c-2"));
  CheckpointState s;
  // c-0 is gone, the victim lies outside (either spelling), "./c-1" is c-1
  // again; the file has no timestamp for the last entry.
  s.all_model_checkpoint_paths = {
      "c-0",   "c-1",   "../" + Basename(outside) + "/victim", outside + "/victim",
      "./c-1", P("c-2")};
  s.all_model_checkpoint_timestamps = {10, 11, 12, 13, 14};
  const std::vector<RetainedCheckpoint> got = RetainedFromState(dir_, s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].prefix, P("c-1"));
  EXPECT_EQ(got[0].timestamp, 11);
  EXPECT_EQ(got[1].prefix, P("c-2"));
  EXPECT_EQ(got[1].timestamp, 0);
  std::error_code ec;
  std::filesystem::remove_all(outside, ec);
}

TEST(RetentionKeepBestTest, MinModeKeepsTheLowestBesidesTheNewest) {
  RetentionList list(RetentionPolicy{1, 0, PreservationRule::kSinceLastPreserved,
                                     /*keep_best=*/2, BestMode::kMin});
  EXPECT_THAT(list.Add("c-1", 1, 0.9), IsEmpty());
  EXPECT_THAT(list.Add("c-2", 2, 0.1), IsEmpty());
  // Newest: c-3; best two: c-2 (0.1), c-1 (0.9 < 1.5).
  EXPECT_THAT(list.Add("c-3", 3, 1.5), IsEmpty());
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-1", "c-2", "c-3"));
  // c-4 (0.5) is newest and second best: c-1 and then c-3 fall out.
  EXPECT_THAT(list.Add("c-4", 4, 0.5), ElementsAre("c-1", "c-3"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-2", "c-4"));
  // The newest stays even when it is the worst.
  EXPECT_THAT(list.Add("c-5", 5, 9.0), IsEmpty());
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-2", "c-4", "c-5"));
  EXPECT_THAT(list.Add("c-6", 6, 0.3), ElementsAre("c-4", "c-5"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-2", "c-6"));
  EXPECT_EQ(list.listed()[0].metric, 0.1);
}

TEST(RetentionKeepBestTest, MaxModeKeepsTheHighest) {
  RetentionList list(RetentionPolicy{1, 0, PreservationRule::kSinceLastPreserved,
                                     /*keep_best=*/1, BestMode::kMax});
  EXPECT_THAT(list.Add("c-1", 1, 0.7), IsEmpty());
  EXPECT_THAT(list.Add("c-2", 2, 0.2), IsEmpty());  // c-1 best, c-2 newest.
  EXPECT_THAT(list.Add("c-3", 3, 0.4), ElementsAre("c-2"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-1", "c-3"));
  EXPECT_THAT(list.Add("c-4", 4, 0.8), ElementsAre("c-1", "c-3"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-4"));
}

TEST(RetentionKeepBestTest, TiesKeepTheNewer) {
  for (BestMode mode : {BestMode::kMin, BestMode::kMax}) {
    RetentionList list(
        RetentionPolicy{1, 0, PreservationRule::kSinceLastPreserved, 1, mode});
    EXPECT_THAT(list.Add("c-1", 1, 0.5), IsEmpty());
    EXPECT_THAT(list.Add("c-2", 2, 0.5), ElementsAre("c-1"));  // Newest and best.
    EXPECT_THAT(list.Add("c-3", 3, mode == BestMode::kMin ? 0.9 : 0.1), IsEmpty());
    // c-2 is the newest of the tied best; c-1 left already.
    EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-2", "c-3"));
    EXPECT_THAT(list.Add("c-4", 4, 0.5), ElementsAre("c-2", "c-3"));
    EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-4"));
  }
}

TEST(RetentionKeepBestTest, CheckpointsWithoutAMetricStayOnlyByRecency) {
  RetentionList list(RetentionPolicy{1, 0, PreservationRule::kSinceLastPreserved,
                                     /*keep_best=*/3, BestMode::kMin});
  EXPECT_THAT(list.Add("c-1", 1), IsEmpty());
  EXPECT_THAT(list.Add("c-2", 2, 5.0), ElementsAre("c-1"));
  EXPECT_THAT(list.Add("c-3", 3), IsEmpty());  // c-2 is among the best 3.
  EXPECT_THAT(list.Add("c-4", 4, 6.0), ElementsAre("c-3"));
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-2", "c-4"));
}

TEST(RetentionKeepBestTest, LeavingBestCheckpointsArePreservedByAge) {
  RetentionList list(RetentionPolicy{1, 1, PreservationRule::kSinceLastPreserved,
                                     /*keep_best=*/1, BestMode::kMin},
                     -1);
  EXPECT_THAT(list.Add("c-1", 0, 1.0), IsEmpty());
  EXPECT_THAT(list.Add("c-2", 2 * kHour, 2.0), IsEmpty());  // c-1 best.
  // c-1 loses best to c-3 and leaves: not preserved (0 - 3600 < -1), so
  // deleted; c-2 leaves too and is preserved (7200 - 3600 >= -1).
  EXPECT_THAT(list.Add("c-3", 3 * kHour, 0.5), ElementsAre("c-1"));
  EXPECT_EQ(list.preserved(), 2 * kHour);
  EXPECT_THAT(list.ListedPrefixes(), ElementsAre("c-3"));
}

TEST(RetentionKeepBestTest, AListRebuiltAfterARestartKeepsTheSameBest) {
  // What a new manager does: the list from the state file, each metric from
  // the checkpoint's index, then the next save.
  const RetentionPolicy policy{2, 0, PreservationRule::kSinceLastPreserved, 1,
                               BestMode::kMin};
  RetentionList first(policy);
  first.Add("c-1", 1, 0.2);
  first.Add("c-2", 2, 0.8);
  first.Add("c-3", 3, 0.9);
  ASSERT_THAT(first.ListedPrefixes(), ElementsAre("c-1", "c-2", "c-3"));
  RetentionList again(policy, first.preserved(), first.listed());
  EXPECT_THAT(again.Add("c-4", 4, 0.5), ElementsAre("c-2"));
  EXPECT_THAT(again.ListedPrefixes(), ElementsAre("c-1", "c-3", "c-4"));
  // Without the metrics the restarted list would have deleted c-1.
  std::vector<RetainedCheckpoint> bare;
  for (const RetainedCheckpoint& c : first.listed())
    bare.push_back({c.prefix, c.timestamp});
  RetentionList forgetful(policy, first.preserved(), bare);
  EXPECT_THAT(forgetful.Add("c-4", 4, 0.5), ElementsAre("c-1", "c-2"));
}

TEST(BroadcastRetainedTest, CarriesAnyBytes) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  std::vector<RetainedCheckpoint> list = {{std::string("a\0b", 3), 1.5}, {"", -0.0}};
  ASSERT_TRUE(BroadcastRetained(*comm, &list, 0).ok());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].prefix, std::string("a\0b", 3));
  EXPECT_EQ(list[0].timestamp, 1.5);
  EXPECT_TRUE(std::signbit(list[1].timestamp));
  EXPECT_EQ(list[0].metric, std::nullopt);

  list = {{"a", 1, -0.0}, {"b", 2}, {"c", 3, 1e-300}};
  ASSERT_TRUE(BroadcastRetained(*comm, &list, 0).ok());
  ASSERT_EQ(list.size(), 3u);
  ASSERT_TRUE(list[0].metric.has_value());
  EXPECT_TRUE(std::signbit(*list[0].metric));
  EXPECT_EQ(list[1].metric, std::nullopt);
  EXPECT_EQ(list[2].metric, 1e-300);
}

}  // namespace
}  // namespace meshckpt
