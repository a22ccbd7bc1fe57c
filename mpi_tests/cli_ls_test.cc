// `meshckpt ls`, `verify` and `inspect` against hostile directories: a state
// file that names checkpoints outside DIR (ls must agree with
// LatestCheckpoint and never call them complete), a state file with 100,000
// entries that have no index (ls is linear in them), and FIFOs where the
// index or the state file should be (refused at once, never waited on).
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/format/index_file.h"
#include "tests/tools/cli_test_util.h"
#include "tests/tools/mini_json.h"

namespace meshckpt {
namespace {

using ::meshckpt::cli_test::CliTest;
using ::meshckpt::cli_test::Numeric;
using ::meshckpt::cli_test::Quote;
using ::meshckpt::cli_test::Result;
using ::meshckpt::cli_test::Save;
using ::meshckpt::cli_test::TestTensor;
using ::testing::HasSubstr;

std::vector<TestTensor> Small() {
  return {Numeric("w", "", DType::kFloat32, {4}, {"x"}, std::vector<float>{1, 2, 3, 4})};
}

std::map<std::string, Json> ByName(const Json& doc) {
  std::map<std::string, Json> out;
  for (const Json& c : doc["checkpoints"].array) out[c["name"].string] = c;
  return out;
}

TEST_F(CliTest, LsNeverCallsACheckpointOutsideDirComplete) {
  const std::string run = Path("run"), elsewhere = Path("elsewhere");
  std::filesystem::create_directories(run);
  std::filesystem::create_directories(elsewhere);
  ASSERT_TRUE(Save(run + "/ckpt-1", Small(), CheckpointContents(), {{"x", 2}}).ok());
  // Complete checkpoints, but not in DIR, and newer than ckpt-1.
  ASSERT_TRUE(
      Save(elsewhere + "/ckpt-3", Small(), CheckpointContents(), {{"x", 2}}).ok());
  ASSERT_TRUE(
      Save(elsewhere + "/ckpt-4", Small(), CheckpointContents(), {{"x", 2}}).ok());
  CheckpointState state;
  state.model_checkpoint_path = elsewhere + "/ckpt-4";
  for (const std::string& p : {std::string("ckpt-1"), std::string("../elsewhere/ckpt-3"),
                               elsewhere + "/ckpt-4"}) {
    state.all_model_checkpoint_paths.push_back(p);
    state.all_model_checkpoint_timestamps.push_back(1000);
  }
  ASSERT_TRUE(WriteCheckpointState(run, state).ok());
  ASSERT_EQ(LatestCheckpoint(run).value(), run + "/ckpt-1");

  Result r = Run({"ls", run, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string error;
  std::optional<Json> doc = ParseJson(r.out, &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << r.out;
  EXPECT_EQ((*doc)["latest"].string, "ckpt-1");
  std::map<std::string, Json> by_name = ByName(*doc);
  ASSERT_EQ(by_name.size(), 3u) << r.out;
  EXPECT_TRUE(by_name["ckpt-1"]["complete"].boolean);
  for (const std::string& outside :
       {run + "/../elsewhere/ckpt-3", elsewhere + "/ckpt-4"}) {
    ASSERT_EQ(by_name.count(outside), 1u) << outside << "\n" << r.out;
    EXPECT_FALSE(by_name[outside]["complete"].boolean);
    EXPECT_FALSE(by_name[outside]["latest"].boolean);
    EXPECT_EQ(by_name[outside]["status"].string, "ignored");
  }
  Result text = Run({"ls", run});
  EXPECT_THAT(text.out, HasSubstr("3 checkpoint(s), 1 complete; * latest: ckpt-1"));

  // Only outside entries: nothing to list is "not found", as LatestCheckpoint.
  ASSERT_TRUE(RemoveFileIfExists(IndexFilePath(run + "/ckpt-1")).ok());
  state.model_checkpoint_path = elsewhere + "/ckpt-4";
  state.all_model_checkpoint_paths.clear();
  state.all_model_checkpoint_timestamps.clear();
  state.all_model_checkpoint_paths.push_back(elsewhere + "/ckpt-4");
  ASSERT_TRUE(WriteCheckpointState(run, state).ok());
  EXPECT_EQ(Run({"ls", run}).code, 3);
}

TEST_F(CliTest, LsIsLinearInStateFileEntries) {
  const std::string run = Path("run");
  std::filesystem::create_directories(run);
  ASSERT_TRUE(Save(run + "/ckpt-0", Small(), CheckpointContents(), {{"x", 2}}).ok());
  constexpr int kEntries = 100000;  // About 9 MB of state file, under its cap.
  CheckpointState state;
  state.model_checkpoint_path = "ckpt-0";
  for (int i = 0; i <= kEntries; ++i) {
    state.all_model_checkpoint_paths.push_back(absl::StrCat("ckpt-", i));
    state.all_model_checkpoint_timestamps.push_back(1000 + i);
  }
  ASSERT_TRUE(WriteCheckpointState(run, state).ok());
  // Quadratic work would take minutes here; the test's time limit catches it.
  Result r = Shell(absl::StrCat("timeout 60 ", Quote(bin_), " ls ", Quote(run)));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(kEntries + 1, " checkpoint(s), 1 complete")));
}

TEST_F(CliTest, FifosAreRefusedNotWaitedOn) {
  const std::string run = Path("run");
  std::filesystem::create_directories(run);
  const std::string prefix = run + "/ckpt-1";
  ASSERT_TRUE(Save(prefix, Small(), CheckpointContents(), {{"x", 2}}).ok());
  ASSERT_TRUE(RemoveFileIfExists(IndexFilePath(prefix)).ok());
  ASSERT_EQ(::mkfifo(IndexFilePath(prefix).c_str(), 0644), 0);
  ASSERT_EQ(::mkfifo((run + "/checkpoint").c_str(), 0644), 0);
  // `timeout` turns a hang into exit code 124.
  for (const char* cmd : {"verify", "inspect"}) {
    Result r =
        Shell(absl::StrCat("timeout 20 ", Quote(bin_), " ", cmd, " ", Quote(prefix)));
    EXPECT_NE(r.code, 0) << cmd;
    EXPECT_NE(r.code, 124) << cmd << " hung";
    EXPECT_THAT(r.err, HasSubstr("a FIFO")) << cmd;
  }
  Result ls = Shell(absl::StrCat("timeout 20 ", Quote(bin_), " ls ", Quote(run)));
  EXPECT_NE(ls.code, 124) << "ls hung";
  EXPECT_THAT(ls.err, HasSubstr("a FIFO"));
}

}  // namespace
}  // namespace meshckpt
