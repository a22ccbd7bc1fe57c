// Bad input to the collective APIs, on every rank count: each case must give
// the same clear status on every rank (never a crash, a hang, or ranks that
// disagree), whether the bad input is on every rank or on one. The serial
// cases are in tests/reliability/bad_input_test.cc.
//
// Cases: a layout that does not fit, on one rank; a tensor list that differs
// on one rank; overflowing dimensions; restore with the wrong dtype or shape
// on one rank, an unknown key; an index whose chunks lie outside the tensor
// or overlap (valid checksum); a data byte flipped in the region one rank
// reads; a truncated or missing data file; a model with another set of
// tensors; garbage and directory-escaping state files under a
// CheckpointManager.
//
// Works in --dir=<dir>/np<N>.
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/format/index_proto.h"
#include "meshckpt/io/fs/fs.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

std::string WorkDir() {
  static const std::string* dir = [] {
    std::string d = "bad_input_work";
    for (const std::string& arg : ::testing::internal::GetArgvs()) {
      absl::string_view a = arg;
      if (absl::ConsumePrefix(&a, "--dir=")) d = std::string(a);
    }
    return new std::string(
        (fs::path(d) / absl::StrCat("np", TestWorld().size())).string());
  }();
  return *dir;
}

std::string FreshDir(Communicator& world, const std::string& name) {
  const std::string dir = (fs::path(WorkDir()) / name).string();
  if (world.rank() == 0) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
  }
  world.Barrier();
  return dir;
}

// Every rank got `s`, with `code`.
#define EXPECT_SAME_ON_ALL_RANKS(world, s, want_code)                  \
  do {                                                                 \
    const absl::Status status_ = (s);                                  \
    EXPECT_EQ(status_.code(), (want_code)) << status_;                 \
    EXPECT_EQ(test::DescribeStatusDisagreement((world), status_), ""); \
  } while (0)

Mesh JobMesh(Communicator& world) {
  return Mesh::Create({{"x", world.size()}, {"y", 2}}, world.rank(), world.size()).value();
}

// Two tensors saved on this job's mesh.
class SavedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        FreshDir(world_, ::testing::UnitTest::GetInstance()->current_test_info()->name());
    prefix_ = dir_ + "/ckpt";
    specs_ = {
        {{"a", DType::kFloat32, {23, 10}}, Layout::Create({"x", "y"}, mesh_).value()},
        {{"b", DType::kInt64, {17}}, Layout::Create({"x"}, mesh_).value()}};
    std::vector<DeviceBuffers> data;
    for (const auto& [spec, layout] : specs_) {
      data.push_back(DeviceBuffers::Filled(spec, layout));
    }
    std::vector<SaveTensor> save;
    for (size_t i = 0; i < specs_.size(); ++i) {
      save.push_back(
          test::MakeSaveTensor(specs_[i].first, specs_[i].second, data[i].ConstPtrs()));
    }
    IoOptions o;
    o.checksum_tile_bytes = 64;
    ASSERT_TRUE(SaveTensors(world_, prefix_, save, {}, o).ok());
  }

  // Restores both tensors as saved, with `edit` applied to this rank's
  // request first.
  absl::Status RestoreBoth(
      const std::function<void(std::vector<TensorSpec>*)>& edit = {}) {
    std::vector<TensorSpec> specs = {specs_[0].first, specs_[1].first};
    if (edit) edit(&specs);
    std::vector<DeviceBuffers> bufs;
    std::vector<RestoreTensor> want;
    for (size_t i = 0; i < specs.size(); ++i) {
      const Layout layout = specs[i].shape.size() == specs_[i].first.shape.size()
                                ? specs_[i].second
                                : Layout::Replicated(mesh_, specs[i].shape.size());
      bufs.push_back(DeviceBuffers::Sentinel(specs[i], layout));
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      const Layout layout = specs[i].shape.size() == specs_[i].first.shape.size()
                                ? specs_[i].second
                                : Layout::Replicated(mesh_, specs[i].shape.size());
      want.push_back(test::MakeRestoreTensor(specs[i], layout, bufs[i].Ptrs()));
    }
    absl::Status s = RestoreTensors(world_, prefix_, want, IoOptions());
    if (s.ok()) {
      std::string report;
      int64_t bad = 0;
      for (const DeviceBuffers& b : bufs) bad += b.Check(true, world_.rank(), &report);
      EXPECT_EQ(bad, 0) << report;
    }
    return s;
  }

  // Rank 0 rewrites the index (valid footer); everyone waits.
  void RewriteIndex(const std::function<void(proto::CheckpointIndexProto*)>& edit) {
    if (world_.rank() == 0) {
      proto::CheckpointIndexProto p =
          DecodeIndexProto(ReadFileBytes(IndexFilePath(prefix_)), "x").value();
      edit(&p);
      WriteFileBytes(IndexFilePath(prefix_), EncodeIndexProto(p));
    }
    world_.Barrier();
  }

  Communicator& world_ = TestWorld();
  Mesh mesh_ = JobMesh(TestWorld());
  std::string dir_, prefix_;
  std::vector<std::pair<TensorSpec, Layout>> specs_;
};

TEST_F(SavedTest, IntactRestoresEverywhere) {
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kOk);
}

TEST_F(SavedTest, WrongDtypeOnOneRankFailsEverywhere) {
  const int last = world_.size() - 1;
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth([&](std::vector<TensorSpec>* s) {
                             if (world_.rank() == last) (*s)[1].dtype = DType::kInt32;
                           }),
                           absl::StatusCode::kFailedPrecondition);
}

TEST_F(SavedTest, WrongShapeFailsEverywhere) {
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth([&](std::vector<TensorSpec>* s) {
                             (*s)[0].shape = {23, 11};
                           }),
                           absl::StatusCode::kFailedPrecondition);
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth([&](std::vector<TensorSpec>* s) {
                             if (world_.rank() == 0) (*s)[0].shape = {230};
                           }),
                           absl::StatusCode::kFailedPrecondition);
}

TEST_F(SavedTest, UnknownKeyFailsEverywhere) {
  EXPECT_SAME_ON_ALL_RANKS(
      world_, RestoreBoth([&](std::vector<TensorSpec>* s) { (*s)[1].key = "missing"; }),
      absl::StatusCode::kNotFound);
  // Only one rank asks for another key: the key lists disagree.
  const absl::Status s = RestoreBoth([&](std::vector<TensorSpec>* s) {
    if (world_.rank() == world_.size() - 1) (*s)[1].key = "missing";
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(test::DescribeStatusDisagreement(world_, s), "");
}

TEST_F(SavedTest, HostileIndexIsDataLossEverywhere) {
  RewriteIndex([](proto::CheckpointIndexProto* p) {
    p->mutable_tensors(0)->mutable_chunks(0)->set_origin(0, 1000);
  });
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kDataLoss);
  RewriteIndex([](proto::CheckpointIndexProto* p) {
    // Back in range, but now overlapping another chunk when there are two.
    p->mutable_tensors(0)->mutable_chunks(0)->set_origin(0, 0);
    if (p->tensors(1).chunks_size() > 1) {
      p->mutable_tensors(1)->mutable_chunks(1)->set_origin(0, 0);
    } else {
      p->mutable_tensors(1)->set_shape(0, int64_t{1} << 62);
    }
  });
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kDataLoss);
  RewriteIndex([](proto::CheckpointIndexProto* p) {
    p->mutable_tensors(0)->set_shape(0, int64_t{1} << 40);
    p->mutable_tensors(0)->set_shape(1, int64_t{1} << 40);
  });
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kDataLoss);
}

// A flipped element byte that only the last rank's devices read: that rank
// finds the checksum mismatch, every rank reports it.
TEST_F(SavedTest, FlippedByteReadByOneRankIsDataLossEverywhere) {
  if (world_.rank() == 0) {
    // Tensor b (int64, 17 elements, split over x): its last element belongs
    // to the last rank. Find its bytes in the file by value.
    const uint64_t h = test::KeyHash("b");
    char want[16];  // ExpectedElement may write up to 16 bytes.
    test::ExpectedElement(DType::kInt64, h, 16, want);
    std::string data = ReadFileBytes(DataFilePath(prefix_));
    const size_t at = data.find(std::string(want, 8));
    ASSERT_NE(at, std::string::npos);
    data[at] = static_cast<char>(data[at] ^ 0x40);
    WriteFileBytes(DataFilePath(prefix_), data);
  }
  world_.Barrier();
  const absl::Status s = RestoreBoth();
  EXPECT_SAME_ON_ALL_RANKS(world_, s, absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "tensor 'b'")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("rank ", world_.size() - 1)))
      << s;
}

TEST_F(SavedTest, TruncatedOrMissingDataFileIsDataLossEverywhere) {
  if (world_.rank() == 0) {
    const std::string data = ReadFileBytes(DataFilePath(prefix_));
    WriteFileBytes(DataFilePath(prefix_), data.substr(0, data.size() / 2));
  }
  world_.Barrier();
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kDataLoss);
  if (world_.rank() == 0) fs::remove(DataFilePath(prefix_));
  world_.Barrier();
  EXPECT_SAME_ON_ALL_RANKS(world_, RestoreBoth(), absl::StatusCode::kDataLoss);
}

TEST(BadSaveInput, LayoutThatDoesNotFitOnOneRankFailsEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "layout_one_rank");
  const Mesh mesh = JobMesh(world);
  const TensorSpec spec{"w", DType::kFloat32, {9, 4}};
  const Layout good = Layout::Create({"x", "unsharded"}, mesh).value();
  DeviceBuffers b = DeviceBuffers::Filled(spec, good);
  // The last rank's layout has the wrong rank.
  const Layout layout =
      world.rank() == world.size() - 1 ? Layout::Create({"x"}, mesh).value() : good;
  const absl::Status s = SaveTensors(
      world, dir + "/ckpt", {test::MakeSaveTensor(spec, layout, b.ConstPtrs())}, {}, {});
  EXPECT_SAME_ON_ALL_RANKS(world, s, absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(CheckpointExists(dir + "/ckpt"));
}

TEST(BadSaveInput, OverflowingDimensionsFailEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "overflow");
  const Mesh mesh = JobMesh(world);
  const Layout l = Layout::Create({"x", "unsharded"}, mesh).value();
  std::vector<const void*> none(mesh.local_device_ids().size(), nullptr);
  const int64_t big = int64_t{1} << 40;
  const SaveTensor t{"huge", "", DType::kFloat32, {big, big}, l, none};
  EXPECT_SAME_ON_ALL_RANKS(world, SaveTensors(world, dir + "/ckpt", {t}, {}, {}),
                           absl::StatusCode::kInvalidArgument);
}

// A model with other tensors than the checkpoint: the restore itself works
// and the LoadStatus assertions fail the same way on every rank.
TEST(DifferentTensorSets, SameLoadStatusEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "sets");
  const Mesh mesh = JobMesh(world);
  const Layout l = Layout::Create({"x"}, mesh).value();
  Module saved;
  ASSERT_TRUE(saved.AddVariable("a", DType::kFloat32, {8}, l).ok());
  ASSERT_TRUE(saved.AddVariable("b", DType::kFloat32, {8}, l).ok());
  auto c1 = DTensorCheckpoint::Create(&world, mesh, {{"m", &saved}}).value();
  absl::StatusOr<std::string> path = c1->Write(dir + "/ckpt");
  ASSERT_TRUE(path.ok()) << path.status();

  Module other;
  ASSERT_TRUE(other.AddVariable("a", DType::kFloat32, {8}, l).ok());
  ASSERT_TRUE(other.AddVariable("c", DType::kFloat32, {8}, l).ok());
  auto c2 = DTensorCheckpoint::Create(&world, mesh, {{"m", &other}}).value();
  c2->SetWarningSink([](const std::string&) {});
  absl::StatusOr<LoadStatus> st = c2->Restore(*path);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_SAME_ON_ALL_RANKS(world, st->AssertConsumed(),
                           absl::StatusCode::kFailedPrecondition);
  EXPECT_SAME_ON_ALL_RANKS(world, st->AssertExistingObjectsMatched(),
                           absl::StatusCode::kFailedPrecondition);

  Module reshaped;  // `a` with another shape: the restore fails.
  ASSERT_TRUE(reshaped.AddVariable("a", DType::kFloat32, {9}, l).ok());
  auto c3 = DTensorCheckpoint::Create(&world, mesh, {{"m", &reshaped}}).value();
  c3->SetWarningSink([](const std::string&) {});
  EXPECT_SAME_ON_ALL_RANKS(world, c3->Restore(*path).status(),
                           absl::StatusCode::kFailedPrecondition);
}

TEST(StateFiles, GarbageAndEscapingPathsGiveTheSameManagerEverywhere) {
  Communicator& world = TestWorld();
  const std::string root = FreshDir(world, "state");
  const std::string dir = root + "/run", outside = root + "/elsewhere";
  if (world.rank() == 0) {
    fs::create_directories(dir);
    fs::create_directories(outside);
  }
  world.Barrier();
  const Mesh mesh = JobMesh(world);
  Module model;
  ASSERT_TRUE(
      model.AddVariable("w", DType::kFloat32, {8}, Layout::Create({"x"}, mesh).value())
          .ok());
  auto ckpt = DTensorCheckpoint::Create(&world, mesh, {{"m", &model}}).value();
  ckpt->SetWarningSink([](const std::string&) {});
  ASSERT_TRUE(ckpt->Write(outside + "/ckpt-7").ok());

  const std::vector<std::string> states = {
      "\x01\x02garbage{{{",
      "model_checkpoint_path: \"../elsewhere/ckpt-7\"\n"
      "all_model_checkpoint_paths: \"../elsewhere/ckpt-7\"\n"
      "all_model_checkpoint_timestamps: 1e12\n",
      absl::StrCat("model_checkpoint_path: \"", outside, "/ckpt-7\"\n",
                   "all_model_checkpoint_paths: \"", outside, "/ckpt-7\"\n"),
  };
  for (const std::string& text : states) {
    if (world.rank() == 0) {
      for (const auto& entry : fs::directory_iterator(dir)) fs::remove(entry.path());
    }
    world.Barrier();
    ASSERT_TRUE(ckpt->Write(dir + "/ckpt-1").ok());
    if (world.rank() == 0) WriteFileBytes(dir + "/checkpoint", text);
    world.Barrier();
    CheckpointManagerOptions o;
    o.max_to_keep = 1;
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(ckpt.get(), dir, o);
    EXPECT_SAME_ON_ALL_RANKS(world, m.status(), absl::StatusCode::kOk);
    if (!m.ok()) continue;
    EXPECT_EQ((*m)->latest_checkpoint(), dir + "/ckpt-1");
    std::string latest = (*m)->latest_checkpoint().value_or("");
    std::vector<std::string> all = world.AllGather(latest);
    for (const std::string& l : all) EXPECT_EQ(l, latest);
    absl::StatusOr<std::optional<std::string>> saved = (*m)->Save();
    EXPECT_SAME_ON_ALL_RANKS(world, saved.status(), absl::StatusCode::kOk);
    saved = (*m)->Save();
    EXPECT_SAME_ON_ALL_RANKS(world, saved.status(), absl::StatusCode::kOk);
    EXPECT_TRUE(CheckpointExists(outside + "/ckpt-7"));
    EXPECT_TRUE(FileExists(DataFilePath(outside + "/ckpt-7")));
    world.Barrier();
  }
}

}  // namespace
}  // namespace meshckpt
