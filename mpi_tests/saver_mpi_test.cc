// Saver and ImportStructure across rank counts: a Saver on N ranks saves,
// a Saver on M ranks (other meshes, other layouts, reshaped variables)
// restores, and ImportStructure on M ranks rebuilds the variables of an
// N-rank checkpoint. Every element is checked bit-exactly against a value
// that is a function of (key, step, global flat index) (test_tensors.h).
//
// The ctest entries saver_mpi_test_np1..np4 share one directory (--dir=...,
// or MESHCKPT_SAVER_DIR). The job of N ranks first replaces `np<N>/` there
// (steps 1..3 of a Saver with max_to_keep 2, checking retention and the
// state file), then restores and imports the newest checkpoint of every
// `np<K>/` present, whichever jobs ran before it; checkpoints written by
// another build of this test (other tensors) are skipped. A resource lock in
// CMake keeps the jobs from running at the same time. Each rank runs the
// tests on one thread.
//
//   mpiexec -n 3 saver_mpi_test --dir=/tmp/saver_work
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using test::SpecsFor;
using test::Style;
using test::TensorSpec;
using ::testing::ElementsAre;

constexpr int64_t kLastStep = 3;

std::string Dir() {
  static const std::string* dir = [] {
    std::string d = "saver_work";
    if (const char* e = std::getenv("MESHCKPT_SAVER_DIR")) d = e;
    for (const std::string& arg : ::testing::internal::GetArgvs()) {
      absl::string_view a = arg;
      if (absl::ConsumePrefix(&a, "--dir=")) d = std::string(a);
    }
    return new std::string(d);
  }();
  return *dir;
}

std::string JobDir(int np) { return (fs::path(Dir()) / absl::StrCat("np", np)).string(); }

const std::vector<TensorSpec>& Tensors() {
  static const auto* specs = new std::vector<TensorSpec>{
      {"dense/kernel", DType::kFloat32, {13, 7}},   {"dense/bias", DType::kFloat64, {7}},
      {"embedding/vocab", DType::kString, {11, 2}}, {"norm/scale", DType::kBfloat16, {5}},
      {"global_step", DType::kInt64, {}},           {"flat/w", DType::kInt32, {6, 4}},
      {"empty/z", DType::kComplex64, {0, 3}},       {"mask", DType::kBool, {3, 5, 2}},
  };
  return *specs;
}

std::string TensorSetFingerprint() {
  std::string all;
  for (const TensorSpec& t : Tensors()) {
    absl::StrAppend(&all, t.key, ":", static_cast<int>(t.dtype), ":",
                    absl::StrJoin(t.shape, ","), ";");
  }
  return absl::StrCat(absl::Hex(test::KeyHash(all)));
}

uint64_t ValueHash(const std::string& key, int64_t step) {
  return test::KeyHash(absl::StrCat(key, "@", step));
}

// Writes (or, with `check`, compares) every local element of `v` against the
// value of (key, step) at its global flat index; returns mismatches and
// describes the first few in `report`.
int64_t FillOrCheck(DVariable* v, const std::string& key, int64_t step, bool check,
                    std::string* report = nullptr) {
  const uint64_t h = ValueHash(key, step);
  const int64_t es = DTypeSize(v->dtype());
  std::vector<char> want(static_cast<size_t>(es > 0 ? es : 1));
  int64_t bad = 0;
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    test::ForEachInBox(
        v->DeviceBox(d), v->shape(),
        [&](int64_t local, const std::vector<int64_t>& c, int64_t g) {
          bool ok = true;
          if (v->dtype() == DType::kString) {
            std::string& s = v->strings(d)[local];
            if (!check) s = test::ExpectedString(h, g);
            ok = s == test::ExpectedString(h, g);
          } else {
            test::ExpectedElement(v->dtype(), h, g, want.data());
            char* got = v->mutable_bytes(d).data() + local * es;
            if (!check) std::memcpy(got, want.data(), static_cast<size_t>(es));
            ok = std::memcmp(got, want.data(), static_cast<size_t>(es)) == 0;
          }
          if (!ok && ++bad <= 3 && report != nullptr) {
            absl::StrAppend(report, "  ", v->name(), " (key ", key, ") device ", d,
                            " at ", test::CoordText(c), " flat ", g, "\n");
          }
        });
  }
  return bad;
}

Layout LayoutFor(const TensorSpec& t, const Mesh& mesh, Style style) {
  return Layout::Create(SpecsFor(mesh.dims(), static_cast<int>(t.shape.size()), style),
                        mesh)
      .value();
}

// Variables for every tensor, tensor i in style (i + offset) % kNumStyles.
struct Model {
  std::vector<std::unique_ptr<DVariable>> owned;
  std::map<std::string, DVariable*> vars;
};
Model MakeModel(const Mesh& mesh, int offset, const std::string& prefix = "") {
  Model m;
  for (size_t i = 0; i < Tensors().size(); ++i) {
    const TensorSpec& t = Tensors()[i];
    const Style style = static_cast<Style>((i + offset) % test::kNumStyles);
    m.owned.push_back(
        DVariable::Create(prefix + t.key, t.dtype, t.shape, LayoutFor(t, mesh, style))
            .value());
    m.vars[t.key] = m.owned.back().get();
  }
  return m;
}

void Log(Communicator& world, const std::string& line) {
  if (world.rank() == 0) std::printf("[saver] %s\n", line.c_str());
  std::fflush(stdout);
}

// Checks `status` is OK and the same on every rank.
void ExpectOkEverywhere(Communicator& world, const absl::Status& s,
                        const std::string& what) {
  EXPECT_TRUE(s.ok()) << what << ": " << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << what;
}

// Checks every variable of `vars` against step kLastStep; logs the total.
void ExpectValues(Communicator& world, const std::map<std::string, DVariable*>& vars,
                  const std::string& label) {
  int64_t bad = 0;
  std::string report;
  for (const auto& [key, v] : vars) bad += FillOrCheck(v, key, kLastStep, true, &report);
  EXPECT_EQ(bad, 0) << label << " (rank " << world.rank() << "):\n" << report;
  Log(world, absl::StrCat(label, ": ", test::SumOverRanks(world, bad), " bad elements"));
}

// ------------------------------------------------------------------- save

TEST(SaverMpi, SaveWithRetention) {
  Communicator& world = TestWorld();
  const int np = world.size();
  const std::string dir = JobDir(np);
  if (world.rank() == 0) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    ASSERT_FALSE(ec) << dir << ": " << ec.message();
  }
  world.Barrier();
  const Mesh mesh = Mesh::Create({{"x", np}, {"y", 2}}, world.rank(), np).value();
  Model model = MakeModel(mesh, 0);
  SaverOptions o;
  o.max_to_keep = 2;
  // Each rank's clock differs: only rank 0's may reach the state file.
  int64_t step = 0;
  const int rank = world.rank();
  o.clock = [&step, rank] { return 1000.0 * static_cast<double>(step) + rank; };
  o.io.transfer_mode = np % 2 == 0 ? TransferMode::kCollective
                                   : TransferMode::kIndependent;
  absl::StatusOr<std::unique_ptr<Saver>> saver = Saver::Create(&world, model.vars, o);
  ExpectOkEverywhere(world, saver.status(), "Saver::Create");
  ASSERT_TRUE(saver.ok());
  ASSERT_TRUE((*saver)->SetCollection("tensor_set", {TensorSetFingerprint()}).ok());
  ASSERT_TRUE((*saver)->SetCollection("origin", {absl::StrCat("np", np), ""}).ok());

  for (step = 1; step <= kLastStep; ++step) {
    for (auto& [key, v] : model.vars) FillOrCheck(v, key, step, false);
    absl::StatusOr<std::string> p = (*saver)->Save(dir + "/model", step);
    ExpectOkEverywhere(world, p.status(), absl::StrCat("save step ", step));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, absl::StrCat(dir, "/model-", step));
  }
  EXPECT_THAT((*saver)->last_checkpoints(),
              ElementsAre(dir + "/model-2", dir + "/model-3"));
  world.Barrier();
  EXPECT_FALSE(fs::exists(IndexFilePath(dir + "/model-1")));
  EXPECT_FALSE(fs::exists(DataFilePath(dir + "/model-1")));
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->model_checkpoint_path, "model-3");
  EXPECT_THAT(state->all_model_checkpoint_paths, ElementsAre("model-2", "model-3"));
  EXPECT_THAT(state->all_model_checkpoint_timestamps, ElementsAre(2000.0, 3000.0));
  Log(world, absl::StrCat("np", np, " saved steps 1..", kLastStep, " in ", dir));

  // Restoring its own newest checkpoint onto another layout of the same job.
  Model other = MakeModel(mesh, 3);
  absl::Status s = Saver::Create(&world, other.vars).value()->Restore(dir + "/model-3");
  ExpectOkEverywhere(world, s, "restore own");
  ExpectValues(world, other.vars, absl::StrCat("np", np, " -> np", np, " own"));
}

// ---------------------------------------------------------------- restore

// Newest checkpoint of every `np<K>` directory present: (K, prefix).
std::vector<std::pair<int, std::string>> Present(Communicator& world) {
  std::string joined;
  if (world.rank() == 0) {
    std::vector<std::string> lines;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(Dir(), ec)) {
      const std::string file = e.path().filename().string();
      absl::string_view name = file;
      int k = 0;
      if (!absl::ConsumePrefix(&name, "np") || !absl::SimpleAtoi(name, &k)) continue;
      absl::StatusOr<std::string> latest = LatestCheckpoint(e.path().string());
      if (latest.ok()) lines.push_back(absl::StrCat(k, " ", *latest));
    }
    std::sort(lines.begin(), lines.end());
    joined = absl::StrJoin(lines, "\n");
  }
  world.Broadcast(&joined, 0);
  std::vector<std::pair<int, std::string>> out;
  for (absl::string_view line : absl::StrSplit(joined, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    int k = 0;
    if (absl::SimpleAtoi(kv.first, &k)) out.push_back({k, std::string(kv.second)});
  }
  // Only checkpoints of this build's tensor set.
  std::vector<std::pair<int, std::string>> fresh;
  for (const auto& [k, prefix] : out) {
    absl::StatusOr<IndexRecord> index = ReadCheckpointIndex(world, prefix);
    if (!index.ok()) continue;
    const auto it = index->user_metadata.find("collection:tensor_set");
    absl::StatusOr<std::vector<std::string>> set = it == index->user_metadata.end()
                                                       ? absl::NotFoundError("")
                                                       : DecodeCollection(it->second);
    if (set.ok() && *set == std::vector<std::string>{TensorSetFingerprint()} &&
        index->step == kLastStep) {
      fresh.push_back({k, prefix});
    } else {
      Log(world, absl::StrCat("skipping stale ", prefix));
    }
  }
  return fresh;
}

TEST(SaverMpi, RestoreEveryRankCountOntoOtherLayouts) {
  Communicator& world = TestWorld();
  const int m = world.size();
  const std::vector<std::pair<int, std::string>> present = Present(world);
  ASSERT_FALSE(present.empty()) << "no checkpoint in " << Dir();
  struct Target {
    std::vector<MeshDimension> dims;
    int offset;
    bool sequential;
  };
  const std::vector<Target> targets = {
      {{{"a", m}}, 1, false},
      {{{"p", 2}, {"q", m}}, 2, true},
      {{{"x", 3 * m}}, 4, false},
  };
  for (const auto& [k, prefix] : present) {
    for (size_t t = 0; t < targets.size(); ++t) {
      const Mesh mesh = Mesh::Create(targets[t].dims, world.rank(), m).value();
      Model model = MakeModel(mesh, targets[t].offset);
      SaverOptions o;
      o.restore_sequentially = targets[t].sequential;
      absl::Status s = Saver::Create(&world, model.vars, o).value()->Restore(prefix);
      const std::string label = absl::StrCat("np", k, " -> np", m, " target ", t);
      ExpectOkEverywhere(world, s, label);
      ExpectValues(world, model.vars, label);
    }
    // Reshaped: [6,4] into [4,6] and [24], by flat index, on other meshes.
    const Mesh mesh = Mesh::Create({{"u", m}, {"v", 2}}, world.rank(), m).value();
    std::vector<std::unique_ptr<DVariable>> vars;
    vars.push_back(
        DVariable::Create("t", DType::kInt32, {4, 6}, *Layout::Create({"v", "u"}, mesh))
            .value());
    vars.push_back(
        DVariable::Create("f", DType::kInt32, {24}, *Layout::Create({"u"}, mesh)).value());
    for (auto& v : vars) {
      SaverOptions o;
      o.reshape = true;
      absl::Status s =
          Saver::Create(&world, {{"flat/w", v.get()}}, o).value()->Restore(prefix);
      const std::string label =
          absl::StrCat("np", k, " -> np", m, " reshape ", v->name());
      ExpectOkEverywhere(world, s, label);
      ExpectValues(world, {{"flat/w", v.get()}}, label);
    }
  }
}

TEST(SaverMpi, ImportStructureOfEveryRankCount) {
  Communicator& world = TestWorld();
  const int m = world.size();
  const std::vector<std::pair<int, std::string>> present = Present(world);
  ASSERT_FALSE(present.empty()) << "no checkpoint in " << Dir();
  // "x" of the saving mesh is kept (other size), "y" becomes unsharded.
  const Mesh mesh = Mesh::Create({{"x", m}, {"z", 2}}, world.rank(), m).value();
  for (const auto& [k, prefix] : present) {
    const std::string label = absl::StrCat("import np", k, " -> np", m);
    absl::StatusOr<ImportedStructure> s =
        ImportStructure(&world, prefix, mesh, "imported/");
    ExpectOkEverywhere(world, s.status(), label);
    if (!s.ok()) continue;
    EXPECT_THAT(s->collections["origin"], ElementsAre(absl::StrCat("np", k), ""));
    ASSERT_EQ(s->variables.size(), Tensors().size());
    // The specs the saving job used (MakeModel(mesh, 0) on x=k, y=2).
    const Mesh saved_mesh = Mesh::Create({{"x", k}, {"y", 2}}, 0, k).value();
    std::map<std::string, DVariable*> by_key;
    for (size_t i = 0; i < Tensors().size(); ++i) {
      const TensorSpec& t = Tensors()[i];
      auto it =
          std::find_if(s->variables.begin(), s->variables.end(),
                       [&](const auto& v) { return v->name() == "imported/" + t.key; });
      ASSERT_NE(it, s->variables.end()) << t.key;
      DVariable* v = it->get();
      EXPECT_EQ(v->dtype(), t.dtype) << t.key;
      EXPECT_EQ(v->shape(), t.shape) << t.key;
      std::vector<std::string> want = SpecsFor(saved_mesh.dims(),
                                               static_cast<int>(t.shape.size()),
                                               static_cast<Style>(i % test::kNumStyles));
      for (std::string& spec : want) {
        if (spec == "y") spec = std::string(kUnsharded);
      }
      EXPECT_EQ(v->layout().sharding_specs(), want) << t.key;
      EXPECT_EQ(v->layout().mesh(), mesh);
      by_key[t.key] = v;
    }
    EXPECT_EQ(s->saver->var_list().size(), Tensors().size());
    ExpectValues(world, by_key, label);
  }
}

}  // namespace
}  // namespace meshckpt
