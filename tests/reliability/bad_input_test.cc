// Bad input, in one process: every case must give a clear Status (the// canonical code, a
// message naming what is wrong), never a crash, an exception, a hang or an out-of-bounds
// access (the sanitizer build runs this too). The multi-rank counterpart, checking that
// every rank returns the same status, is mpi_tests/bad_input_mpi_test.cc; damaged indexes
// and wrong restore requests are in bad_index_test.cc.
//
// Cases: malformed mesh and layout strings; layouts that do not fit the
// tensor; dimensions whose product overflows int64; a model with another
// set of tensors; garbage state files; state-file paths that escape the
// directory.

#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kBig = int64_t{1} << 40;

TEST(BadMeshStrings, AreInvalidArgument) {
  const std::vector<std::string> bad = {
      "",
      "|",
      "||||",
      "|||||||",
      "x=2|0,1|0,1|*CPU",
      "|x=2|0,1|0,1|",
      "|x=|0|0|*CPU",
      "|=2|0,1|0,1|*CPU",
      "|x=0|0|0|*CPU",
      "|x=-2|0,1|0,1|*CPU",
      "|x=2.5|0,1|0,1|*CPU",
      "|x=99999999999999999999|0|0|*CPU",
      "|x=9223372036854775807|0|0|*CPU",
      "|x=4294967296,y=4294967296|0|0|*CPU",
      "|x=16777216,y=2|0|0|*CPU",
      "|x=2,x=2|0,1,2,3|0,1,2,3|*CPU",
      "|x=2|0,1|0,1,2|*CPU",
      "|x=2|1,0|0,1|*CPU",
      "|x=2|0,1|1,0|*CPU",
      "|x=2|0,2|0,1|*CPU",
      "|x=2|0,,1|0,1|*CPU",
      "|x=2|0,1||*CPU",
      "|x=2|0,1|0,1|/job:a/device:CPU:0",
      "|x=2|0,1|0,1|*",
      "|x=2|a,b|0,1|*CPU",
      "|x=4|0,1,2,3|0,2|*CPU",
      "|x=4|0,1,2,3|1,2,3|*CPU",
      "|x=2|0,1|0,1|*CPU|a,b,c",
      std::string("|x=2|0,1|0,1|*CPU\0", 18),
      "|x y=2|0,1|0,1|*CPU",
      "|x=2|0,1|-1|*CPU",
      "|x=2|0,1|18446744073709551615|*CPU",
  };
  for (const std::string& text : bad) {
    absl::StatusOr<Mesh> m = Mesh::FromString(text);
    EXPECT_TRUE(absl::IsInvalidArgument(m.status()))
        << "'" << text << "' gave "
        << (m.ok() ? "OK: " + m->ToString() : m.status().ToString());
    if (!m.ok()) {
      EXPECT_FALSE(m.status().message().empty());
    }
  }
}

TEST(BadLayoutStrings, AreInvalidArgument) {
  const std::string mesh = "|x=2,y=2|0,1,2,3|0,1,2,3|*CPU";
  const std::vector<std::string> bad = {
      "",
      "sharding_specs:",
      "mesh:" + mesh,
      "sharding_specs:x, " + mesh,
      "sharding_specs:x, mesh:",
      "sharding_specs:z, mesh:" + mesh,
      "sharding_specs:x,x, mesh:" + mesh,
      "sharding_specs:x,,y, mesh:" + mesh,
      "sharding_specs:,, mesh:" + mesh,
      "sharding_specs:x,y,unsharded mesh:|x=2|0,1|0,1|*CPU",
      "sharding_specs:X, mesh:" + mesh,
      "sharding_specs:unsharded, mesh:|x=0|0|0|*CPU",
      "sharding_specs:x, mesh:mesh:" + mesh,
      "SHARDING_SPECS:x, mesh:" + mesh,
  };
  for (const std::string& text : bad) {
    absl::StatusOr<Layout> l = Layout::FromString(text);
    EXPECT_TRUE(absl::IsInvalidArgument(l.status()))
        << "'" << text << "' gave "
        << (l.ok() ? "OK: " + l->ToString() : l.status().ToString());
  }
}

TEST(LayoutsThatDoNotFit, AreInvalidArgument) {
  const Mesh mesh = Mesh::Create({{"x", 2}, {"y", 2}}, 0, 1).value();
  const Layout rank2 = Layout::Create({"x", "y"}, mesh).value();
  // Rank mismatch, both ways.
  EXPECT_TRUE(absl::IsInvalidArgument(ShardMap::Create(rank2, {8}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ShardMap::Create(rank2, {8, 8, 8}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ShardMap::Create(rank2, {}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      DVariable::Create("v", DType::kFloat32, {8}, rank2).status()));
  // Negative sizes.
  EXPECT_TRUE(absl::IsInvalidArgument(ShardMap::Create(rank2, {-1, 4}).status()));
  // More shards than elements is legal (trailing shards empty).
  EXPECT_TRUE(ShardMap::Create(rank2, {1, 1}).ok());

  std::unique_ptr<Communicator> comm = SerialCommunicator();
  std::vector<float> buf(64);
  std::vector<const void*> ptrs(4, buf.data());
  const SaveTensor t{"w", "", DType::kFloat32, {8}, rank2, ptrs};
  absl::Status s =
      SaveTensors(*comm, "/tmp/meshckpt_bad_layout_" + RandomId(), {t}, {}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'w'")) << s;
  // A layout on a mesh for another rank count.
  const Mesh two_ranks = Mesh::Create({{"x", 2}}, 0, 2).value();
  const SaveTensor u{
      "u",         "", DType::kFloat32, {8}, Layout::Create({"x"}, two_ranks).value(),
      {buf.data()}};
  s = SaveTensors(*comm, "/tmp/meshckpt_bad_layout_" + RandomId(), {u}, {}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  // Too few device buffers.
  const SaveTensor few{"few", "", DType::kFloat32, {8, 8}, rank2, {buf.data()}};
  s = SaveTensors(*comm, "/tmp/meshckpt_bad_layout_" + RandomId(), {few}, {}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST(OverflowingDimensions, AreInvalidArgument) {
  const Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  const Layout l2 = Layout::Replicated(mesh, 2);
  const Layout l3 = Layout::Replicated(mesh, 3);
  const int64_t max = std::numeric_limits<int64_t>::max();
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{kBig, kBig}, {max, 2}, {3, max}}) {
    EXPECT_TRUE(absl::IsInvalidArgument(CheckedNumElements(shape).status()));
    EXPECT_TRUE(absl::IsInvalidArgument(ShardMap::Create(l2, shape).status()));
    EXPECT_TRUE(absl::IsInvalidArgument(
        DVariable::Create("v", DType::kFloat32, shape, l2).status()));
  }
  EXPECT_TRUE(absl::IsInvalidArgument(
      ShardMap::Create(l3, {int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 21})
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Box::Create({max, 0}, {1, 1}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Box::Create({0, 0}, {kBig, kBig}).status()));

  std::unique_ptr<Communicator> comm = SerialCommunicator();
  const SaveTensor t{"huge", "", DType::kFloat32, {kBig, kBig}, l2, {nullptr}};
  absl::Status s =
      SaveTensors(*comm, "/tmp/meshckpt_overflow_" + RandomId(), {t}, {}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'huge'")) << s;
}

// A model whose tensors differ from the checkpoint's: the restore succeeds
// for what matches and LoadStatus says what did not.
TEST(DifferentTensorSets, LoadStatusNamesTheDifference) {
  const std::string dir = "/tmp/meshckpt_sets_" + RandomId();
  fs::create_directories(dir);
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  const Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  Module saved;
  ASSERT_TRUE(
      saved.AddVariable("a", DType::kFloat32, {4}, Layout::Replicated(mesh, 1)).ok());
  ASSERT_TRUE(
      saved.AddVariable("b", DType::kFloat32, {4}, Layout::Replicated(mesh, 1)).ok());
  auto ckpt = DTensorCheckpoint::Create(comm.get(), mesh, {{"m", &saved}}).value();
  ckpt->SetWarningSink([](const std::string&) {});
  absl::StatusOr<std::string> path = ckpt->Save(dir + "/ckpt");
  ASSERT_TRUE(path.ok()) << path.status();

  Module other;  // Has a and c, not b.
  ASSERT_TRUE(
      other.AddVariable("a", DType::kFloat32, {4}, Layout::Replicated(mesh, 1)).ok());
  ASSERT_TRUE(
      other.AddVariable("c", DType::kFloat32, {4}, Layout::Replicated(mesh, 1)).ok());
  auto ckpt2 = DTensorCheckpoint::Create(comm.get(), mesh, {{"m", &other}}).value();
  ckpt2->SetWarningSink([](const std::string&) {});
  absl::StatusOr<LoadStatus> st = ckpt2->Restore(*path);
  ASSERT_TRUE(st.ok()) << st.status();
  absl::Status consumed = st->AssertConsumed();
  EXPECT_TRUE(absl::IsFailedPrecondition(consumed)) << consumed;
  absl::Status matched = st->AssertExistingObjectsMatched();
  EXPECT_TRUE(absl::IsFailedPrecondition(matched)) << matched;
  EXPECT_TRUE(absl::StrContains(matched.message(), "c")) << matched;

  Module mismatched;  // `a` with another shape.
  ASSERT_TRUE(
      mismatched.AddVariable("a", DType::kFloat32, {5}, Layout::Replicated(mesh, 1)).ok());
  auto ckpt3 = DTensorCheckpoint::Create(comm.get(), mesh, {{"m", &mismatched}}).value();
  ckpt3->SetWarningSink([](const std::string&) {});
  absl::StatusOr<LoadStatus> st3 = ckpt3->Restore(*path);
  EXPECT_TRUE(absl::IsFailedPrecondition(st3.status())) << st3.status();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

class StateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_);
    fs::create_directories(outside_);
    mesh_ = Mesh::Create({{"x", 1}}, 0, 1).value();
    w_ = model_.AddVariable("w", DType::kFloat32, {4}, Layout::Replicated(mesh_, 1))
             .value();
    ckpt_ = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"m", &model_}}).value();
    ckpt_->SetWarningSink([](const std::string&) {});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string root_ = "/tmp/meshckpt_state_" + RandomId();
  std::string dir_ = root_ + "/run";
  std::string outside_ = root_ + "/elsewhere";
  Mesh mesh_ = Mesh::Create({{"x", 1}}, 0, 1).value();
  Module model_;
  DVariable* w_ = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt_;
};

TEST_F(StateFileTest, GarbageIsDataLossAndTheDirectoryIsScanned) {
  ASSERT_TRUE(ckpt_->Write(dir_ + "/ckpt-1").ok());
  std::mt19937_64 rng(7);
  std::vector<std::string> garbage = {
      "",
      "\xff\xfe\x00\x01",
      "model_checkpoint_path: ",
      "model_checkpoint_path: \"",
      "all_model_checkpoint_paths: 3",
      "{{{{",
      std::string(10000, 'x'),
      "model_checkpoint_path: \"ckpt-1\" unknown_field: 1",
      "all_model_checkpoint_timestamps: nan model_checkpoint_path: \"ckpt-1\"",
      "last_preserved_timestamp: 1e999"};
  for (int i = 0; i < 50; ++i) {
    std::string g(rng() % 200, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    garbage.push_back(g);
  }
  for (const std::string& g : garbage) {
    WriteFileBytes(dir_ + "/checkpoint", g);
    absl::StatusOr<CheckpointState> s = ReadCheckpointState(dir_);
    EXPECT_TRUE(s.ok() || absl::IsDataLoss(s.status())) << s.status();
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir_);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(*latest, dir_ + "/ckpt-1");
    CheckpointManagerOptions o;
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(ckpt_.get(), dir_, o);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->latest_checkpoint(), dir_ + "/ckpt-1");
  }
}

TEST_F(StateFileTest, PathsEscapingTheDirectoryAreIgnoredAndNeverDeleted) {
  // A committed checkpoint outside the directory that a hostile state file
  // names.
  const std::string victim = outside_ + "/ckpt-9";
  ASSERT_TRUE(ckpt_->Write(victim).ok());
  const std::vector<std::string> escapes = {
      "../elsewhere/ckpt-9",        victim,        "./../elsewhere/ckpt-9",
      "sub/../../elsewhere/ckpt-9", "//" + victim, dir_ + "/../elsewhere/ckpt-9"};
  for (const std::string& e : escapes) {
    CheckpointState s;
    s.model_checkpoint_path = e;
    s.all_model_checkpoint_paths.push_back(e);
    s.all_model_checkpoint_timestamps.push_back(1.0);
    s.last_preserved_timestamp = 0;
    ASSERT_TRUE(WriteCheckpointState(dir_, s).ok());
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir_);
    EXPECT_TRUE(absl::IsNotFound(latest.status()))
        << e << " gave " << (latest.ok() ? *latest : latest.status().ToString());
    // A manager keeping one checkpoint saves twice: it must not delete the
    // victim.
    CheckpointManagerOptions o;
    o.max_to_keep = 1;
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(ckpt_.get(), dir_, o);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->Save().ok());
    ASSERT_TRUE((*m)->Save().ok());
    EXPECT_TRUE(CheckpointExists(victim)) << e;
    EXPECT_TRUE(FileExists(DataFilePath(victim))) << e;
    for (const std::string& p : (*m)->checkpoints()) {
      EXPECT_TRUE(absl::StartsWith(p, dir_ + "/")) << p;
    }
    // Clean the directory for the next case.
    for (const auto& entry : fs::directory_iterator(dir_)) fs::remove(entry.path());
  }
}

TEST_F(StateFileTest, BadLatestFilenamesAreInvalidArgument) {
  for (const char* name : {"", ".", "..", "a/b", "../checkpoint"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ReadCheckpointState(dir_, name).status()))
        << name;
    EXPECT_TRUE(absl::IsInvalidArgument(LatestCheckpoint(dir_, name).status())) << name;
    CheckpointManagerOptions o;
    o.latest_filename = name;
    EXPECT_TRUE(
        absl::IsInvalidArgument(CheckpointManager::Create(ckpt_.get(), dir_, o).status()))
        << name;
  }
}

}  // namespace
}  // namespace meshckpt
