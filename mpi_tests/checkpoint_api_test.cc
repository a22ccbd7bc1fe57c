// DTensorCheckpoint across rank counts: a model of several modules and an
// optimizer with the same sharding, saved on 4 ranks (phase save) and
// restored on 1, 2 and 3 ranks with other meshes and layouts (phase
// restore); deferred restoration; partial restore with ExpectPartial. It is
// saved twice, synchronously and then asynchronously with every value
// overwritten as soon as SaveAsync returns.
//
//   checkpoint_api_test --dir=DIR --phase=save|restore
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

struct VarSpec {
  std::string path;  // Under the root module.
  std::vector<int64_t> shape;
  int split_dim;  // Tensor dim split over the "model" mesh dim, -1: none.
};

// An MLP-ish model: embedding split by vocabulary, column- and row-parallel
// matrices, a replicated bias.
const std::vector<VarSpec>& ModelSpecs() {
  static const auto* specs = new std::vector<VarSpec>{
      {"embed/table", {50, 12}, 0},
      {"dense1/kernel", {12, 20}, 1},
      {"dense1/bias", {20}, -1},
      {"dense2/kernel", {20, 7}, 0},
  };
  return *specs;
}

// `model_dim` names the mesh dimension that plays "model"; `batch_dim`
// (may be empty) additionally splits dim 0 of unsplit matrices.
Layout LayoutFor(const VarSpec& v, const Mesh& mesh, const std::string& model_dim,
                 bool transposed) {
  std::vector<std::string> specs(v.shape.size(), std::string(kUnsharded));
  int dim = v.split_dim;
  if (transposed && dim >= 0 && v.shape.size() == 2) dim = 1 - dim;
  if (dim >= 0) specs[dim] = model_dim;
  return Layout::Create(specs, mesh).value();
}

struct Model {
  Module root;
  Module* model = nullptr;
  Module* optimizer = nullptr;
  std::vector<std::pair<std::string, DVariable*>> vars;  // Checkpoint path -> var.
  TrackedValue* step = nullptr;
  TrackedValue* rng = nullptr;
};

// Adds the variables of `specs` under `module`, each path prefixed by
// `prefix` for the checkpoint path bookkeeping.
void AddVariables(Module* module, const std::string& prefix, const Mesh& mesh,
                  const std::string& model_dim, bool transposed, Model* m) {
  for (const VarSpec& v : ModelSpecs()) {
    Module* parent = module;
    std::vector<std::string> parts = absl::StrSplit(v.path, '/');
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      Trackable* existing = parent->FindChild(parts[i]);
      parent = existing ? static_cast<Module*>(existing)
                        : parent->AddModule(parts[i]).value();
    }
    DVariable* var = parent
                         ->AddVariable(parts.back(), DType::kFloat32, v.shape,
                                       LayoutFor(v, mesh, model_dim, transposed))
                         .value();
    m->vars.emplace_back(prefix + v.path, var);
  }
}

// model/..., optimizer/m/model/..., optimizer/v/model/..., step, rng.
std::unique_ptr<Model> BuildModel(const Mesh& mesh, const std::string& model_dim,
                                  bool transposed, bool with_optimizer = true) {
  auto m = std::make_unique<Model>();
  m->model = m->root.AddModule("model").value();
  AddVariables(m->model, "model/", mesh, model_dim, transposed, m.get());
  if (with_optimizer) {
    m->optimizer = m->root.AddModule("optimizer").value();
    for (const char* slot : {"m", "v"}) {
      Module* s = m->optimizer->AddModule(slot).value()->AddModule("model").value();
      AddVariables(s, absl::StrCat("optimizer/", slot, "/model/"), mesh, model_dim,
                   transposed, m.get());
    }
  }
  m->step = m->root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
  m->rng = m->root
               .AddValue("rng", TrackedValue::Create(std::string(),
                                                     TrackedValue::Scope::kPerRank))
               .value();
  return m;
}

// Writes/checks values that are a function of (path, global index).
void Fill(DVariable* v, const std::string& path) {
  const uint64_t h = test::KeyHash(path);
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    char* out = v->mutable_bytes(d).data();
    test::ForEachInBox(v->DeviceBox(d), v->shape(),
                       [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
                         test::ExpectedElement(DType::kFloat32, h, g, out + 4 * local);
                       });
  }
}

int64_t CountWrong(DVariable* v, const std::string& path) {
  const uint64_t h = test::KeyHash(path);
  int64_t bad = 0;
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    const char* got = v->bytes(d).data();
    test::ForEachInBox(v->DeviceBox(d), v->shape(),
                       [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
                         char want[16];  // ExpectedElement writes up to 16 bytes.
                         test::ExpectedElement(DType::kFloat32, h, g, want);
                         bad += std::memcmp(want, got + 4 * local, 4) != 0;
                       });
  }
  return bad;
}

void ExpectAllValues(const Model& m, Communicator& comm) {
  for (const auto& [path, v] : m.vars) {
    EXPECT_EQ(CountWrong(v, path), 0)
        << path << " on rank " << comm.rank() << " layout " << v->layout().ToString();
  }
}

std::string SaveDir() { return TestArg("--dir=") + "/np4"; }

TEST(CheckpointApi, Phase) {
  Communicator& world = TestWorld();
  const std::string phase = TestArg("--phase=");
  ASSERT_FALSE(TestArg("--dir=").empty()) << "needs --dir=";
  if (phase == "save") {
    ASSERT_EQ(world.size(), 4);
    if (world.rank() == 0) {
      ASSERT_EQ(
          std::system(
              absl::StrCat("rm -rf ", SaveDir(), " && mkdir -p ", SaveDir()).c_str()),
          0);
    }
    world.Barrier();
    Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 2}}, world.rank(), 4).value();
    auto m = BuildModel(mesh, "model", /*transposed=*/false);
    for (const auto& [path, v] : m->vars) Fill(v, path);
    ASSERT_TRUE(m->step->set(int64_t{1234}).ok());
    ASSERT_TRUE(m->rng->set(absl::StrCat("rng-", world.rank())).ok());
    auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &m->root).value();
    ASSERT_TRUE(ckpt->Save(SaveDir() + "/ckpt").ok());  // ckpt-1
    // ckpt-2, async: it must hold the values of the call, though training
    // overwrites them at once.
    absl::StatusOr<std::string> path = ckpt->SaveAsync(SaveDir() + "/ckpt");
    ASSERT_TRUE(path.ok()) << path.status();
    for (const auto& [p, v] : m->vars) {
      for (int64_t d : v->layout().mesh().local_device_ids()) {
        std::memset(v->mutable_bytes(d).data(), 0x5a, v->mutable_bytes(d).size());
      }
    }
    ASSERT_TRUE(m->step->set(int64_t{99}).ok());
    ASSERT_TRUE(m->rng->set(std::string("scribbled")).ok());
    ASSERT_TRUE(ckpt->WaitUntilFinished().ok());
    EXPECT_EQ(*path, SaveDir() + "/ckpt-2");
    // In-job: transposed layouts on the same ranks.
    auto back = BuildModel(mesh, "batch", /*transposed=*/true);
    auto c2 = DTensorCheckpoint::Create(&world, mesh, {}, &back->root).value();
    LoadStatus st = c2->Restore(*path).value();
    EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();
    ExpectAllValues(*back, world);
    return;
  }
  ASSERT_EQ(phase, "restore");
  const std::string latest = LatestCheckpoint(SaveDir()).value();
  // 1-D mesh of 2*size devices; the model dimension is that mesh.
  Mesh mesh = Mesh::Create({{"x", 2 * world.size()}}, world.rank(), world.size()).value();

  ASSERT_EQ(latest, SaveDir() + "/ckpt-2");
  // Whole model, other mesh, transposed layouts: the synchronous save and
  // the async one (the latest).
  for (const std::string& prefix : {SaveDir() + "/ckpt-1", latest}) {
    SCOPED_TRACE(prefix);
    auto m = BuildModel(mesh, "x", /*transposed=*/true);
    auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &m->root).value();
    absl::StatusOr<LoadStatus> st = ckpt->Restore(prefix);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_TRUE(st->AssertConsumed().ok()) << st->AssertConsumed();
    ExpectAllValues(*m, world);
    EXPECT_EQ(m->step->int64(), 1234);
    EXPECT_EQ(ckpt->save_counter(), prefix == latest ? 2 : 1);
    // Per-rank values: saved by 4 ranks; rank r gets saved rank r % 4.
    EXPECT_EQ(m->rng->bytes(), absl::StrCat("rng-", world.rank() % 4));
    EXPECT_EQ(m->rng->saved_values().size(), 4u);
  }
  {  // Deferred: the optimizer is built after the restore.
    auto m = BuildModel(mesh, "x", false, /*with_optimizer=*/false);
    auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &m->root).value();
    LoadStatus st = ckpt->Restore(latest).value();
    EXPECT_TRUE(st.AssertExistingObjectsMatched().ok());
    EXPECT_FALSE(st.AssertConsumed().ok());
    ExpectAllValues(*m, world);
    m->optimizer = m->root.AddModule("optimizer").value();
    for (const char* slot : {"m", "v"}) {
      Module* s = m->optimizer->AddModule(slot).value()->AddModule("model").value();
      AddVariables(s, absl::StrCat("optimizer/", slot, "/model/"), mesh, "x", false,
                   m.get());
    }
    EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();
    ExpectAllValues(*m, world);
  }
  {  // Partial: only the model, ExpectPartial, no report.
    std::vector<std::string> warnings;
    {
      Module root;
      Module* model = root.AddModule("model").value();
      Model only;
      AddVariables(model, "model/", mesh, "x", false, &only);
      auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &root).value();
      ckpt->SetWarningSink([&](const std::string& w) { warnings.push_back(w); });
      LoadStatus st = ckpt->Restore(latest).value();
      st.ExpectPartial();
      EXPECT_TRUE(st.AssertExistingObjectsMatched().ok());
      EXPECT_TRUE(st.AssertNontrivialMatch().ok());
      EXPECT_FALSE(st.AssertConsumed().ok());
      ExpectAllValues(only, world);
    }
    EXPECT_TRUE(warnings.empty());
  }
}

}  // namespace
}  // namespace meshckpt
