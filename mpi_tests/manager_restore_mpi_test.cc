// CheckpointManager::RestoreOrInitialize under MPI (2 and 3 ranks): a
// newest checkpoint whose data fails its checksum on one rank's shard only
// makes every rank fall back to the same older checkpoint, with the same
// skipped list; policy errors and a disabled fallback give every rank the
// same status; a failed restore prints no "never restored" warning.
//
//   manager_restore_mpi_test --dir=DIR   (one subdirectory per rank count)
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "mpi_tests/mpi_test_env.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kPerRank = 64;

// Rank 0 makes `<--dir>/np<N>/<name>` fresh; every rank gets its path.
std::string FreshDir(const std::string& name) {
  std::string base = "manager_restore_work";
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, "--dir=")) base = std::string(a);
  }
  Communicator& world = TestWorld();
  const std::string dir =
      (std::filesystem::path(base) / absl::StrCat("np", world.size()) / name).string();
  if (world.rank() == 0) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
  }
  world.Barrier();
  return std::filesystem::absolute(dir).lexically_normal().string();
}

// Variables `names`, each kPerRank floats per rank, split over the ranks.
struct Model {
  Module model;
  std::vector<DVariable*> vars;
  std::unique_ptr<DTensorCheckpoint> ckpt;
  std::shared_ptr<std::vector<std::string>> warnings =
      std::make_shared<std::vector<std::string>>();

  explicit Model(std::vector<std::string> names) {
    Communicator& world = TestWorld();
    Mesh mesh = Mesh::Create({{"x", world.size()}}, world.rank(), world.size()).value();
    for (const std::string& n : names) {
      vars.push_back(model
                         .AddVariable(n, DType::kFloat32, {kPerRank * world.size()},
                                      Layout::Create({"x"}, mesh).value())
                         .value());
    }
    ckpt = DTensorCheckpoint::Create(&world, mesh, {{"model", &model}}).value();
    ckpt->SetWarningSink([w = warnings](const std::string& m) { w->push_back(m); });
  }
  // Variable i holds base * (i + 1) everywhere.
  void Fill(float base) {
    for (size_t i = 0; i < vars.size(); ++i) {
      for (int64_t d : ckpt->mesh().local_device_ids()) {
        for (float& x : vars[i]->shard<float>(d)) x = base * static_cast<float>(i + 1);
      }
    }
  }
  std::vector<float> Local(size_t i) const {
    std::vector<float> out;
    for (int64_t d : ckpt->mesh().local_device_ids()) {
      absl::Span<const float> s = static_cast<const DVariable*>(vars[i])->shard<float>(d);
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }
};

std::unique_ptr<CheckpointManager> NewManager(Model& m, const std::string& dir,
                                              bool fall_back = true) {
  CheckpointManagerOptions o;
  o.fall_back_to_intact = fall_back;
  absl::StatusOr<std::unique_ptr<CheckpointManager>> manager =
      CheckpointManager::Create(m.ckpt.get(), dir, o);
  EXPECT_TRUE(manager.ok()) << manager.status();
  return manager.ok() ? *std::move(manager) : nullptr;
}

// ckpt-1 holds a=1, z=2; ckpt-2 holds a=10, z=20. Then rank 0 flips a byte
// in the first shard of ckpt-2's z (that rank's read fails its checksum;
// the others read fine) and everyone waits for it.
void SaveTwoAndDamageNewest(const std::string& dir) {
  {
    Model m({"a", "z"});
    auto manager = NewManager(m, dir);
    ASSERT_NE(manager, nullptr);
    m.Fill(1);
    ASSERT_TRUE(manager->Save().ok());
    m.Fill(10);
    ASSERT_TRUE(manager->Save().ok());
  }
  Communicator& world = TestWorld();
  if (world.rank() == 0) {
    const std::string path = dir + "/ckpt-2.h5";
    std::string bytes = ReadFileBytes(path);
    const float z = 20.0f;
    std::string pattern;
    for (int i = 0; i < 8; ++i) pattern.append(reinterpret_cast<const char*>(&z), 4);
    const size_t at = bytes.find(pattern);
    EXPECT_NE(at, std::string::npos);
    if (at != std::string::npos) {
      bytes[at + 5] ^= 0x5a;
      WriteFileBytes(path, bytes);
    }
  }
  world.Barrier();
}

// Every rank's `s`, gathered: they must all be the same.
void ExpectSameOnEveryRank(const std::string& s) {
  const std::vector<std::string> all = TestWorld().AllGather(s);
  for (size_t r = 0; r < all.size(); ++r) EXPECT_EQ(all[r], all[0]) << "rank " << r;
}

TEST(ManagerRestoreMpiTest, EveryRankFallsBackToTheSameIntactCheckpoint) {
  const std::string dir = FreshDir("fallback");
  SaveTwoAndDamageNewest(dir);
  Model m({"a", "z"});
  m.Fill(-1);
  auto manager = NewManager(m, dir);
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ExpectSameOnEveryRank(r.status().ToString());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, dir + "/ckpt-1");
  const std::vector<SkippedCheckpoint>& skipped = r->load_status->skipped_checkpoints();
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].prefix, dir + "/ckpt-2");
  EXPECT_TRUE(absl::IsDataLoss(skipped[0].status)) << skipped[0].status;
  ExpectSameOnEveryRank(skipped[0].status.ToString());
  // All of ckpt-1 on every rank, whatever the failed attempt wrote.
  EXPECT_THAT(m.Local(0), Each(1.0f));
  EXPECT_THAT(m.Local(1), Each(2.0f));
  EXPECT_TRUE(r->load_status->AssertConsumed().ok());
}

TEST(ManagerRestoreMpiTest, WithoutFallbackEveryRankGetsTheDataLossAndNoWarning) {
  const std::string dir = FreshDir("no_fallback");
  SaveTwoAndDamageNewest(dir);
  auto m = std::make_unique<Model>(std::vector<std::string>{"a", "z"});
  auto manager = NewManager(*m, dir, /*fall_back=*/false);
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ExpectSameOnEveryRank(r.status().ToString());
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("ckpt-2"));
  const auto warnings = m->warnings;
  manager.reset();
  m.reset();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST(ManagerRestoreMpiTest, AnotherModelsCheckpointFailsAlikeOnEveryRank) {
  const std::string dir = FreshDir("other_model");
  {
    Model m({"a", "z"});
    auto manager = NewManager(m, dir);
    ASSERT_NE(manager, nullptr);
    m.Fill(1);
    ASSERT_TRUE(manager->Save().ok());
  }
  for (RestoreMatch match :
       {RestoreMatch::kAllMatched, RestoreMatch::kExistingObjectsMatched,
        RestoreMatch::kPartial}) {
    auto other = std::make_unique<Model>(std::vector<std::string>{"q"});
    other->Fill(7);
    auto manager = NewManager(*other, dir);
    ASSERT_NE(manager, nullptr);
    absl::StatusOr<RestoreResult> r = manager->RestoreOrInitialize(match);
    ExpectSameOnEveryRank(r.status().ToString());
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(dir + "/ckpt-1"));
    EXPECT_THAT(other->Local(0), Each(7.0f));
    const auto warnings = other->warnings;
    manager.reset();
    other.reset();
    EXPECT_THAT(*warnings, IsEmpty());
  }
}

}  // namespace
}  // namespace meshckpt
