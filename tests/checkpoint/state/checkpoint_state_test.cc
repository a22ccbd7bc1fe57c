// Tests of the `checkpoint` state file, LatestCheckpoint and the directory
// sweeps (checkpoint/state/checkpoint_state.h). Real committed checkpoints are made
// with SaveTensors on a SerialCommunicator and a one-device mesh.
#include "meshckpt/checkpoint/state/checkpoint_state.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/path.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/checkpoint/state/tf_checkpoint_state.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void WriteText(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomically(path, text).ok()) << path;
}

class CheckpointStateTest : public ::testing::Test {
 protected:
  ~CheckpointStateTest() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // A new directory `name` under the test's root.
  std::string MakeTempDir(const std::string& name) {
    const std::string dir = root_ + "/" + name;
    EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
    return dir;
  }

  // A committed checkpoint at `prefix` holding one small float vector.
  void MakeCheckpoint(const std::string& prefix) {
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    Layout layout = Layout::Replicated(mesh, 1);
    std::vector<float> data = {1.5f, -2.f, 3.25f};
    SaveTensor t{"w", "", DType::kFloat32, {3}, layout, {data.data()}};
    absl::Status s = SaveTensors(*comm_, prefix, {t}, {}, {});
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE(CheckpointExists(prefix));
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string root_ = [] {
    const char* env = std::getenv("TEST_TMPDIR");
    std::string r = std::string(env ? env : "/tmp") + "/meshckpt_state_" + RandomId();
    EXPECT_EQ(::mkdir(r.c_str(), 0755), 0) << r;
    return r;
  }();
  std::string dir_ = MakeTempDir("t");
};

CheckpointState SampleState() {
  CheckpointState s;
  s.model_checkpoint_path = "ckpt-3";
  s.all_model_checkpoint_paths.push_back("ckpt-2");
  s.all_model_checkpoint_paths.push_back("ckpt-3");
  s.all_model_checkpoint_timestamps.push_back(1700000000.5);
  s.all_model_checkpoint_timestamps.push_back(1700000100.25);
  s.last_preserved_timestamp = 1699999000;
  return s;
}

TEST_F(CheckpointStateTest, RoundTrip) {
  ASSERT_TRUE(WriteCheckpointState(dir_, SampleState()).ok());
  absl::StatusOr<CheckpointState> back = ReadCheckpointState(dir_);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == SampleState());
  // The temporary of the atomic write is gone.
  EXPECT_THAT(ListDir(dir_), ElementsAre("checkpoint"));
}

TEST(CheckpointStateEncodingTest, RoundTripsAnyBytesAndEveryDoubleBit) {
  CheckpointState s;
  s.model_checkpoint_path = std::string("/d/\xff\0x", 6);
  s.all_model_checkpoint_paths = {"", "a", std::string(1000, 'z')};
  s.all_model_checkpoint_timestamps = {-0.0, std::numeric_limits<double>::infinity(),
                                       1712345678.123456789, std::nan("7")};
  s.last_preserved_timestamp = 5e-324;
  const std::string bytes = EncodeCheckpointState(s);
  absl::StatusOr<CheckpointState> back = DecodeCheckpointState(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  // Bit for bit (NaN != NaN, so compare the encodings too).
  EXPECT_EQ(EncodeCheckpointState(*back), bytes);
  EXPECT_EQ(back->model_checkpoint_path, s.model_checkpoint_path);
  EXPECT_EQ(back->all_model_checkpoint_paths, s.all_model_checkpoint_paths);
  EXPECT_TRUE(std::signbit(back->all_model_checkpoint_timestamps[0]));
  EXPECT_EQ(back->last_preserved_timestamp, 5e-324);
  EXPECT_TRUE(DecodeCheckpointState(EncodeCheckpointState({})).value() ==
              CheckpointState());
  // Every truncation and an extra byte are refused, never misread.
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_TRUE(absl::IsInternal(DecodeCheckpointState(bytes.substr(0, n)).status()))
        << n;
  }
  EXPECT_TRUE(absl::IsInternal(DecodeCheckpointState(bytes + "x").status()));
}

TEST_F(CheckpointStateTest, CustomFilename) {
  ASSERT_TRUE(WriteCheckpointState(dir_, SampleState(), "latest").ok());
  EXPECT_THAT(ListDir(dir_), ElementsAre("latest"));
  EXPECT_TRUE(ReadCheckpointState(dir_, "latest").ok());
  EXPECT_TRUE(absl::IsNotFound(ReadCheckpointState(dir_).status()));
  for (const char* bad : {"", ".", "..", "a/b"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ReadCheckpointState(dir_, bad).status())) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(WriteCheckpointState(dir_, SampleState(), bad)))
        << bad;
  }
}

TEST_F(CheckpointStateTest, TextFormatIsTensorFlowCompatible) {
  ASSERT_TRUE(WriteCheckpointState(dir_, SampleState()).ok());
  const std::string text = ReadFileBytes(dir_ + "/checkpoint");
  EXPECT_THAT(text, HasSubstr("model_checkpoint_path: \"ckpt-3\"\n"));
  EXPECT_THAT(text, HasSubstr("all_model_checkpoint_paths: \"ckpt-2\"\n"
                              "all_model_checkpoint_paths: \"ckpt-3\"\n"));
  EXPECT_THAT(text, HasSubstr("all_model_checkpoint_timestamps: 1700000000.5\n"));
  EXPECT_THAT(text, HasSubstr("last_preserved_timestamp: 1699999000\n"));

  // A file as tf.train.CheckpointManager writes it.
  WriteText(dir_ + "/checkpoint",
            "model_checkpoint_path: \"ckpt-7\"\n"
            "all_model_checkpoint_paths: \"ckpt-6\"\n"
            "all_model_checkpoint_paths: \"ckpt-7\"\n"
            "all_model_checkpoint_timestamps: 1712345678.123456\n"
            "all_model_checkpoint_timestamps: 1712345688.5\n"
            "last_preserved_timestamp: 1712340000.0\n");
  absl::StatusOr<CheckpointState> s = ReadCheckpointState(dir_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->model_checkpoint_path, "ckpt-7");
  EXPECT_THAT(s->all_model_checkpoint_paths, ElementsAre("ckpt-6", "ckpt-7"));
  EXPECT_THAT(s->all_model_checkpoint_timestamps,
              ElementsAre(1712345678.123456, 1712345688.5));
  EXPECT_EQ(s->last_preserved_timestamp, 1712340000.0);
}

TEST_F(CheckpointStateTest, KeepBestStateFileParsesAsTensorFlowCheckpointState) {
  TfCheckpointStateParser tf;
  ASSERT_EQ(tf.Parse("no_such_field: 1\n"), nullptr);  // The parser is strict.
  // A keep-best list: the best (by metric) and the newest, not contiguous.
  RetentionList list(RetentionPolicy{1, 0, PreservationRule::kSinceLastPreserved,
                                     /*keep_best=*/2, BestMode::kMin},
                     1699999000);
  const double metrics[] = {0.5, 0.1, 0.9, 0.7, 0.3, 0.8};
  for (int i = 0; i < 6; ++i) {
    list.Add(JoinPath(dir_, "ckpt-" + std::to_string(i + 1)), 1700000000 + i, metrics[i]);
  }
  ASSERT_EQ(list.listed().size(), 3u);  // ckpt-2, ckpt-5 (best), ckpt-6 (newest).
  const RetainedCheckpoint latest = list.listed().back();
  absl::StatusOr<CheckpointState> state = StateAfterSave({dir_}, list, latest);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(WriteCheckpointState(dir_, *state).ok());

  const std::string text = ReadFileBytes(dir_ + "/checkpoint");
  std::unique_ptr<google::protobuf::Message> parsed = tf.Parse(text);
  ASSERT_NE(parsed, nullptr) << text;
  const google::protobuf::Reflection* r = parsed->GetReflection();
  const google::protobuf::Descriptor* d = parsed->GetDescriptor();
  EXPECT_EQ(r->GetString(*parsed, d->FindFieldByName("model_checkpoint_path")), "ckpt-6");
  const auto* paths = d->FindFieldByName("all_model_checkpoint_paths");
  const auto* stamps = d->FindFieldByName("all_model_checkpoint_timestamps");
  ASSERT_EQ(r->FieldSize(*parsed, paths), 3);
  ASSERT_EQ(r->FieldSize(*parsed, stamps), 3);
  const char* want[] = {"ckpt-2", "ckpt-5", "ckpt-6"};
  const double want_t[] = {1700000001, 1700000004, 1700000005};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->GetRepeatedString(*parsed, paths, i), want[i]);
    EXPECT_EQ(r->GetRepeatedDouble(*parsed, stamps, i), want_t[i]);
  }
  EXPECT_EQ(r->GetDouble(*parsed, d->FindFieldByName("last_preserved_timestamp")),
            1699999000);
  // And it reads back as our own state, too.
  absl::StatusOr<CheckpointState> back = ReadCheckpointState(dir_);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == *state);
}

TEST_F(CheckpointStateTest, MissingStateFileIsNotFound) {
  absl::StatusOr<CheckpointState> s = ReadCheckpointState(dir_);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(dir_ + "/checkpoint"));
  EXPECT_TRUE(absl::IsNotFound(LatestCheckpoint(dir_).status()));
}

TEST_F(CheckpointStateTest, GarbageStateFileIsDataLossAndLatestScans) {
  MakeCheckpoint(dir_ + "/ckpt-1");
  MakeCheckpoint(dir_ + "/ckpt-2");
  WriteText(dir_ + "/checkpoint", "model_checkpoint_path: \"ckpt-1\"\n\x01garbage {{");
  absl::StatusOr<CheckpointState> s = ReadCheckpointState(dir_);
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(dir_ + "/checkpoint"));

  absl::StatusOr<std::string> latest = LatestCheckpoint(dir_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, dir_ + "/ckpt-2");
}

TEST_F(CheckpointStateTest, LatestIsTheNewestCommittedWhetherTheStateNamesItOrNot) {
  MakeCheckpoint(dir_ + "/ckpt-1");
  MakeCheckpoint(dir_ + "/ckpt-2");
  CheckpointState s;
  // A job that died after committing ckpt-2, before updating the state file.
  s.model_checkpoint_path = "ckpt-1";
  s.all_model_checkpoint_paths.push_back("ckpt-1");
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-2");

  // An absolute path inside the directory is accepted as written.
  s.model_checkpoint_path = dir_ + "/ckpt-2";
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-2");

  // A relative `dir` gives prefixes relative in the same way; the state
  // file's spelling of the newest one wins.
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  absl::StatusOr<std::string> absolute = LatestCheckpoint(".");
  s.model_checkpoint_path = "ckpt-2";
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
  absl::StatusOr<std::string> relative = LatestCheckpoint(".");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(absolute.value(), dir_ + "/ckpt-2");
  EXPECT_EQ(relative.value(), "./ckpt-2");
}

TEST_F(CheckpointStateTest, StateNamingDeletedCheckpointFallsBackToNewestIntact) {
  for (int i = 1; i <= 3; ++i) MakeCheckpoint(dir_ + "/ckpt-" + std::to_string(i));
  CheckpointState s;
  s.model_checkpoint_path = "ckpt-3";
  for (int i = 1; i <= 3; ++i) {
    s.all_model_checkpoint_paths.push_back("ckpt-" + std::to_string(i));
  }
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-3");

  // The data file alone (index deleted) is not a checkpoint.
  ASSERT_TRUE(RemoveFileIfExists(dir_ + "/ckpt-3.index").ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-2");
  ASSERT_TRUE(DeleteCheckpoint(dir_ + "/ckpt-2").ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-1");

  // Nothing in the state is committed: the directory scan finds ckpt-4.
  ASSERT_TRUE(DeleteCheckpoint(dir_ + "/ckpt-1").ok());
  MakeCheckpoint(dir_ + "/ckpt-4");
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-4");
  ASSERT_TRUE(DeleteCheckpoint(dir_ + "/ckpt-4").ok());
  EXPECT_TRUE(absl::IsNotFound(LatestCheckpoint(dir_).status()));
}

TEST_F(CheckpointStateTest, LostOrTruncatedDataIsNotLatest) {
  for (int i = 1; i <= 3; ++i) MakeCheckpoint(dir_ + "/ckpt-" + std::to_string(i));
  CheckpointState s;
  s.model_checkpoint_path = "ckpt-3";
  for (int i = 1; i <= 3; ++i) {
    s.all_model_checkpoint_paths.push_back("ckpt-" + std::to_string(i));
  }
  ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
  EXPECT_TRUE(CheckpointIsIntact(dir_ + "/ckpt-3"));

  // Truncated data file: skipped, by the state file and by the scan.
  std::string data = ReadFileBytes(dir_ + "/ckpt-3.h5");
  ASSERT_TRUE(
      WriteFileAtomically(dir_ + "/ckpt-3.h5", data.substr(0, data.size() / 2)).ok());
  EXPECT_FALSE(CheckpointIsIntact(dir_ + "/ckpt-3"));
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-2");
  // Data file gone.
  ASSERT_TRUE(RemoveFileIfExists(dir_ + "/ckpt-2.h5").ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-1");
  ASSERT_TRUE(RemoveFileIfExists(dir_ + "/checkpoint").ok());
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-1");
  EXPECT_EQ(ListCommittedCheckpoints(dir_), std::vector<std::string>{dir_ + "/ckpt-1"});
}

TEST_F(CheckpointStateTest, PathsEscapingTheDirectoryAreIgnored) {
  const std::string outer = MakeTempDir("outer");
  MakeCheckpoint(outer + "/victim");
  const std::string inner = outer + "/run";
  ASSERT_EQ(::mkdir(inner.c_str(), 0755), 0);
  CheckpointState s;
  s.model_checkpoint_path = "../victim";
  s.all_model_checkpoint_paths.push_back(outer + "/victim");
  s.all_model_checkpoint_paths.push_back(inner + "/../victim");
  s.all_model_checkpoint_paths.push_back("sub/../../victim");
  s.all_model_checkpoint_paths.push_back("..");
  ASSERT_TRUE(WriteCheckpointState(inner, s).ok());
  // The only committed checkpoint the state names lies outside: not found.
  EXPECT_TRUE(absl::IsNotFound(LatestCheckpoint(inner).status()));

  // The scan fallback still finds what is really inside.
  MakeCheckpoint(inner + "/ckpt-1");
  EXPECT_EQ(LatestCheckpoint(inner).value(), inner + "/ckpt-1");
}

TEST_F(CheckpointStateTest, ListCommittedCheckpointsOrdersByIndexTimestamp) {
  MakeCheckpoint(dir_ + "/b");
  MakeCheckpoint(dir_ + "/a");
  MakeCheckpoint(dir_ + "/c");
  WriteText(dir_ + "/broken.index", "not an index");
  WriteText(dir_ + "/d.h5", "data without index");
  ASSERT_EQ(::mkdir((dir_ + "/dir.index").c_str(), 0755), 0);
  EXPECT_THAT(ListCommittedCheckpoints(dir_),
              ElementsAre(dir_ + "/b", dir_ + "/a", dir_ + "/c"));
  EXPECT_TRUE(ListCommittedCheckpoints(dir_ + "/missing").empty());
}

TEST_F(CheckpointStateTest, ResolveAndRelativePaths) {
  EXPECT_EQ(ResolveCheckpointPath("/d/run", "ckpt-1"), "/d/run/ckpt-1");
  EXPECT_EQ(ResolveCheckpointPath("/d/run/", "ckpt-1"), "/d/run/ckpt-1");
  EXPECT_EQ(ResolveCheckpointPath("/d/run", "/e/ckpt-1"), "/e/ckpt-1");
  EXPECT_EQ(ResolveCheckpointPath("rel", "ckpt-1"), "rel/ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "/d/run/ckpt-1"), "ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run/", "/d/run//ckpt-1"), "ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "/d/run/sub/ckpt-1"), "sub/ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "/d/running/ckpt-1"), "/d/running/ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "/d/run/../x"), "/d/run/../x");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "/d/run"), "/d/run");
  EXPECT_EQ(RelativeCheckpointPath("rel", "rel/ckpt-1"), "ckpt-1");
  EXPECT_EQ(RelativeCheckpointPath("/d/run", "ckpt-1"), "ckpt-1");
}

TEST_F(CheckpointStateTest, DeleteCheckpointRemovesBothFiles) {
  MakeCheckpoint(dir_ + "/ckpt-1");
  MakeCheckpoint(dir_ + "/ckpt-2");
  ASSERT_TRUE(DeleteCheckpoint(dir_ + "/ckpt-1").ok());
  EXPECT_FALSE(CheckpointExists(dir_ + "/ckpt-1"));
  EXPECT_THAT(ListDir(dir_), ElementsAre("ckpt-2.h5", "ckpt-2.index"));
  EXPECT_TRUE(DeleteCheckpoint(dir_ + "/ckpt-1").ok());  // Already gone: fine.
}

TEST_F(CheckpointStateTest, SweepRemovesExactlyTheStaleFiles) {
  MakeCheckpoint(dir_ + "/ckpt-1");
  ASSERT_TRUE(WriteCheckpointState(dir_, SampleState()).ok());
  const std::vector<std::string> stale = {
      "ckpt-2.h5.partial-0123456789abcdef",  // Crashed before the commit.
      "checkpoint.tmp-0123456789abcdef",     // Crashed state-file write.
      "ckpt-3.index.tmp-fedcba9876543210",   // Crashed index write.
      "ckpt-3.h5",                           // Renamed, but never indexed.
  };
  for (const std::string& n : stale) WriteText(dir_ + "/" + n, "x");
  const std::vector<std::string> kept = {
      "notes.txt",           // Not ours.
      "run.tmp-3.data",      // Only looks like a temporary.
      "ckpt-4.h5.partial-",  // No id.
  };
  for (const std::string& n : kept) WriteText(dir_ + "/" + n, "x");
  ASSERT_EQ(::mkdir((dir_ + "/sub.h5").c_str(), 0755), 0);  // Not a file.

  absl::StatusOr<int> removed = SweepStaleTemporaries(dir_);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 4);
  EXPECT_THAT(ListDir(dir_),
              UnorderedElementsAre("checkpoint", "ckpt-1.h5", "ckpt-1.index", "notes.txt",
                                   "run.tmp-3.data", "ckpt-4.h5.partial-", "sub.h5"));
  EXPECT_TRUE(CheckpointExists(dir_ + "/ckpt-1"));
  EXPECT_EQ(SweepStaleTemporaries(dir_).value(), 0);
  EXPECT_TRUE(absl::IsNotFound(SweepStaleTemporaries(dir_ + "/missing").status()));
}

}  // namespace
}  // namespace meshckpt
