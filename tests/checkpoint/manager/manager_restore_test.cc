// CheckpointManager::RestoreOrInitialize in one process: the match policies
// (everything, existing objects, partial; a checkpoint that matches nothing
// fails under each), the fallback past a newest checkpoint whose data fails
// its checksum (bytes flipped in its .h5), and no "never restored" warning
// after a restore that failed.
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "tests/checkpoint/manager/manager_fixture.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int64_t kN = 64;

// A model with variables "a" and "z" (and optionally "extra"), whose
// checkpoint object records every warning it would print.
struct Model {
  Module model;
  DVariable* a = nullptr;
  DVariable* z = nullptr;
  std::map<std::string, DVariable*> vars;
  std::unique_ptr<DTensorCheckpoint> ckpt;
  // Shared with the sink, which restore sessions copy: a deferred value
  // left on the model reports when the model goes.
  std::shared_ptr<std::vector<std::string>> warnings =
      std::make_shared<std::vector<std::string>>();

  void Fill(float av, float zv) {
    for (float& x : a->shard<float>(0)) x = av;
    for (float& x : z->shard<float>(0)) x = zv;
  }
  std::vector<float> A() const {
    absl::Span<const float> s = static_cast<const DVariable*>(a)->shard<float>(0);
    return {s.begin(), s.end()};
  }
  std::vector<float> Z() const {
    absl::Span<const float> s = static_cast<const DVariable*>(z)->shard<float>(0);
    return {s.begin(), s.end()};
  }
};

class ManagerRestoreTest : public CheckpointManagerTest {
 protected:
  // `names`: the model's variables (each kN floats).
  std::unique_ptr<Model> NewModel(std::vector<std::string> names = {"a", "z"}) {
    auto m = std::make_unique<Model>();
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    for (const std::string& n : names) {
      DVariable* v =
          m->model.AddVariable(n, DType::kFloat32, {kN}, Layout::Replicated(mesh, 1))
              .value();
      m->vars[n] = v;
      if (n == "a") m->a = v;
      if (n == "z") m->z = v;
    }
    m->ckpt =
        DTensorCheckpoint::Create(comm_.get(), mesh, {{"model", &m->model}}).value();
    m->ckpt->SetWarningSink(
        [w = m->warnings](const std::string& msg) { w->push_back(msg); });
    return m;
  }

  // Saves ckpt-1 with a=1, z=10 and ckpt-2 with a=2, z=20.
  void SaveTwo() {
    auto m = NewModel();
    auto manager = NewManager(*m->ckpt, Options());
    m->Fill(1, 10);
    MustSave(*manager);
    now_ += 10;
    m->Fill(2, 20);
    MustSave(*manager);
  }

  std::unique_ptr<CheckpointManager> NewManager(DTensorCheckpoint& ckpt,
                                                CheckpointManagerOptions o) {
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(&ckpt, dir_, std::move(o));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }
};

// Flips a byte of the stored elements of a tensor filled with `value` in the
// data file of `prefix`: the file keeps its size (so it still looks intact),
// but its checksum fails when read.
void DamageValues(const std::string& prefix, float value) {
  const std::string path = prefix + ".h5";
  std::string bytes = ReadFileBytes(path);
  std::string pattern;
  for (int i = 0; i < 8; ++i) pattern.append(reinterpret_cast<const char*>(&value), 4);
  const size_t at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos) << "values " << value << " not found in " << path;
  bytes[at + 5] ^= 0x5a;
  WriteFileBytes(path, bytes);
  ASSERT_TRUE(CheckpointIsIntact(prefix));  // Same size: only checksums tell.
}

TEST_F(ManagerRestoreTest, AllMatchedRestoresAndReportsTheLoadStatus) {
  SaveTwo();
  auto m = NewModel();
  auto manager = NewManager(*m->ckpt, Options());
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, Ckpt(2));
  ASSERT_TRUE(r->load_status.has_value());
  EXPECT_TRUE(r->load_status->AssertConsumed().ok());
  EXPECT_THAT(r->load_status->skipped_checkpoints(), IsEmpty());
  EXPECT_THAT(m->A(), Each(2.0f));
  EXPECT_THAT(m->Z(), Each(20.0f));
}

TEST_F(ManagerRestoreTest, ACheckpointOfAnotherModelFailsUnderEveryPolicy) {
  SaveTwo();
  for (RestoreMatch match :
       {RestoreMatch::kAllMatched, RestoreMatch::kExistingObjectsMatched,
        RestoreMatch::kPartial}) {
    auto other = NewModel({"q"});
    for (float& x : other->vars["q"]->shard<float>(0)) x = 7;
    auto manager = NewManager(*other->ckpt, Options());
    absl::StatusOr<RestoreResult> r = manager->RestoreOrInitialize(match);
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(Ckpt(2)));
    EXPECT_THAT(r.status().message(), HasSubstr("besides the save counter matched"));
    // Nothing was written, and no misleading "never restored" warning.
    absl::Span<const float> q =
        static_cast<const DVariable*>(other->vars["q"])->shard<float>(0);
    EXPECT_THAT(std::vector<float>(q.begin(), q.end()), Each(7.0f));
    const auto warnings = other->warnings;
    manager.reset();
    other.reset();
    EXPECT_THAT(*warnings, IsEmpty());
  }
}

TEST_F(ManagerRestoreTest, PoliciesOnACheckpointWithMoreValues) {
  SaveTwo();  // Holds a and z.
  {
    auto m = NewModel({"a"});
    auto manager = NewManager(*m->ckpt, Options());
    absl::StatusOr<RestoreResult> r =
        manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("model/z"));
    const auto warnings = m->warnings;
    manager.reset();
    m.reset();
    EXPECT_THAT(*warnings, IsEmpty());  // The error says it all.
  }
  {
    auto m = NewModel({"a"});
    auto manager = NewManager(*m->ckpt, Options());
    absl::StatusOr<RestoreResult> r =
        manager->RestoreOrInitialize(RestoreMatch::kExistingObjectsMatched);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(m->A(), Each(2.0f));
    EXPECT_THAT(r->load_status->UnusedKeys(), Not(IsEmpty()));
    r = absl::InternalError("drop the LoadStatus");
    const auto warnings = m->warnings;
    manager.reset();
    m.reset();
    // Not partial: the unused value is reported.
    ASSERT_EQ(warnings->size(), 1u);
    EXPECT_THAT((*warnings)[0], HasSubstr("never restored"));
  }
  {
    auto m = NewModel({"a"});
    auto manager = NewManager(*m->ckpt, Options());
    absl::StatusOr<RestoreResult> r =
        manager->RestoreOrInitialize(RestoreMatch::kPartial);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(m->A(), Each(2.0f));
    r = absl::InternalError("drop the LoadStatus");
    const auto warnings = m->warnings;
    manager.reset();
    m.reset();
    EXPECT_THAT(*warnings, IsEmpty());  // Partial was asked for.
  }
}

TEST_F(ManagerRestoreTest, PoliciesOnALiveModelWithMoreObjects) {
  SaveTwo();
  auto m = NewModel({"a", "z", "extra"});
  auto manager = NewManager(*m->ckpt, Options());
  for (RestoreMatch match :
       {RestoreMatch::kAllMatched, RestoreMatch::kExistingObjectsMatched}) {
    absl::StatusOr<RestoreResult> r = manager->RestoreOrInitialize(match);
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("model/extra"));
    EXPECT_THAT(r.status().message(), HasSubstr(Ckpt(2)));
  }
  absl::StatusOr<RestoreResult> r = manager->RestoreOrInitialize(RestoreMatch::kPartial);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, Ckpt(2));
  EXPECT_THAT(m->A(), Each(2.0f));
}

TEST_F(ManagerRestoreTest, FallsBackPastADamagedNewestCheckpoint) {
  SaveTwo();
  DamageValues(Ckpt(2), 20.0f);  // z of the newest.
  auto m = NewModel();
  m->Fill(-1, -1);
  auto manager = NewManager(*m->ckpt, Options());
  ASSERT_EQ(manager->latest_checkpoint(), Ckpt(2));  // Looks intact by size.
  testing::internal::CaptureStderr();
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_from, Ckpt(1));
  ASSERT_TRUE(r->load_status.has_value());
  EXPECT_TRUE(r->load_status->AssertConsumed().ok());
  const std::vector<SkippedCheckpoint>& skipped = r->load_status->skipped_checkpoints();
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].prefix, Ckpt(2));
  EXPECT_TRUE(absl::IsDataLoss(skipped[0].status)) << skipped[0].status;
  // Loud: which checkpoint, and why.
  EXPECT_THAT(err, HasSubstr("WARNING: checkpoint '" + Ckpt(2) + "' is damaged"));
  EXPECT_THAT(err, HasSubstr(std::string(skipped[0].status.message())));
  EXPECT_THAT(err, HasSubstr("restored '" + Ckpt(1) + "'"));
  // Every value from ckpt-1, including any the failed attempt wrote.
  EXPECT_THAT(m->A(), Each(1.0f));
  EXPECT_THAT(m->Z(), Each(10.0f));
  EXPECT_EQ(m->ckpt->save_counter(), 1);
  // Numbering goes on past the damaged one.
  EXPECT_EQ(MustSave(*manager), Ckpt(3));
  const auto warnings = m->warnings;
  manager.reset();
  m.reset();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(ManagerRestoreTest, TheFailedAttemptWritesSomeValuesWhichTheFallbackOverwrites) {
  // Without fallback the damaged restore fails half way: values of `a`
  // (read before the damaged `z`) are already ckpt-2's. This is what the
  // fallback has to overwrite, and the previous test shows it does.
  SaveTwo();
  DamageValues(Ckpt(2), 20.0f);
  auto m = NewModel();
  m->Fill(-1, -1);
  CheckpointManagerOptions o = Options();
  o.fall_back_to_intact = false;
  auto manager = NewManager(*m->ckpt, o);
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kAllMatched);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(Ckpt(2)));
  EXPECT_THAT(m->A(), Each(2.0f));
  // A failed restore prints no "never restored" warning.
  const auto warnings = m->warnings;
  manager.reset();
  m.reset();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(ManagerRestoreTest, EveryCheckpointDamagedIsDataLossNamingThemAll) {
  SaveTwo();
  DamageValues(Ckpt(2), 20.0f);
  DamageValues(Ckpt(1), 10.0f);
  auto m = NewModel();
  auto manager = NewManager(*m->ckpt, Options());
  testing::internal::CaptureStderr();
  absl::StatusOr<RestoreResult> r = manager->RestoreOrInitialize(RestoreMatch::kPartial);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("'" + Ckpt(2) + "'"));
  EXPECT_THAT(r.status().message(), HasSubstr("'" + Ckpt(1) + "'"));
  EXPECT_THAT(err, HasSubstr("'" + Ckpt(1) + "' is damaged"));
  const auto warnings = m->warnings;
  manager.reset();
  m.reset();
  EXPECT_THAT(*warnings, IsEmpty());
}

TEST_F(ManagerRestoreTest, AFallbackThatDoesNotMatchSaysWhatWasSkipped) {
  // ckpt-1 of another model, ckpt-2 of this one but damaged.
  {
    auto other = NewModel({"q"});
    auto manager = NewManager(*other->ckpt, Options());
    MustSave(*manager);
  }
  now_ += 10;
  {
    auto m = NewModel();
    auto manager = NewManager(*m->ckpt, Options());
    m->Fill(2, 20);
    MustSave(*manager);
  }
  DamageValues(Ckpt(2), 20.0f);
  auto m = NewModel();
  auto manager = NewManager(*m->ckpt, Options());
  testing::internal::CaptureStderr();
  absl::StatusOr<RestoreResult> r =
      manager->RestoreOrInitialize(RestoreMatch::kExistingObjectsMatched);
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(Ckpt(1)));
  EXPECT_THAT(r.status().message(), HasSubstr("after skipping '" + Ckpt(2) + "'"));
}

TEST_F(ManagerRestoreTest, DirectRestoreThatFailsPrintsNoNeverRestoredWarning) {
  SaveTwo();
  DamageValues(Ckpt(2), 20.0f);
  // The failed restore consumed nothing, so before the fix every value was
  // reported "never restored".
  auto m = NewModel();
  absl::StatusOr<LoadStatus> s = m->ckpt->Restore(Ckpt(2));
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  s = absl::InternalError("gone");
  const auto warnings = m->warnings;
  m.reset();
  EXPECT_THAT(*warnings, IsEmpty());
  // A model without z on the intact checkpoint does warn: the sink works.
  auto partial = NewModel({"a"});
  absl::StatusOr<LoadStatus> ok = partial->ckpt->Restore(Ckpt(1));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ok = absl::InternalError("gone");
  const auto partial_warnings = partial->warnings;
  partial.reset();  // Its pending z goes with it.
  ASSERT_EQ(partial_warnings->size(), 1u);
  EXPECT_THAT((*partial_warnings)[0], HasSubstr(Ckpt(1)));
  EXPECT_THAT((*partial_warnings)[0], HasSubstr("never restored"));
}

}  // namespace
}  // namespace meshckpt
