// Resharding matrix: save on (ranks, mesh, layout), restore on (ranks', mesh',
// layout') and check every element of every local device buffer bit-exactly.
//
// Saving on N ranks and restoring on M needs two jobs, so the test works in a
// checkpoint directory shared between ctest entries (--dir=..., or the
// MESHCKPT_RESHARD_DIR environment variable) and has phases (--phase=...):
//
//   save     rank 0 deletes this rank count's old checkpoints
//            (`save-np<N>-*`), then every save configuration of N ranks is
//            written to `save-np<N>-<config>` and its index checked.
//   all      save, then restore this job's own checkpoints onto every target
//            configuration of N ranks, then restore every checkpoint present
//            from other rank counts (whatever earlier jobs left).
//   restore  restore every checkpoint present (any rank count) onto every
//            target of N ranks; with --expect-np=1,2,3,4 a missing rank
//            count is a failure, not a silent gap in the matrix.
//
// CMake registers `all` for 1..4 ranks (fixture setup) and `restore` for 1..4
// ranks after them, so both directions of every pair of rank counts run.
// Every save and restore configuration holds the same tensors (every dtype,
// prime and zero sizes, scalars, empty shards); each tensor's layout comes
// from the configuration's style (see test_tensors.h SpecsFor), rotated per
// tensor for "mixed" configurations. Values are a function of the global
// index (test_tensors.h), so any (save, restore) pair can be checked.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/dtype.h"
#include "checkpoint/engine/shard_io.h"
#include "gtest/gtest.h"
#include "layout/layout.h"
#include "layout/shard_map.h"
#include "mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::SpecsFor;
using test::Style;
using test::TensorSpec;

// ---------------------------------------------------------------- options

struct MatrixOptions {
  std::string dir = "reshard_work";
  std::string phase = "all";  // save | restore | all
  std::vector<int> expect_np;  // restore: these rank counts must be present
};

const MatrixOptions& Options() {
  static const MatrixOptions* opts = [] {
    auto* o = new MatrixOptions;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_DIR")) o->dir = e;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_PHASE")) o->phase = e;
    std::string expect;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_EXPECT_NP")) expect = e;
    for (const std::string& arg : ::testing::internal::GetArgvs()) {
      absl::string_view a = arg;
      if (absl::ConsumePrefix(&a, "--dir=")) o->dir = std::string(a);
      else if (absl::ConsumePrefix(&a, "--phase=")) o->phase = std::string(a);
      else if (absl::ConsumePrefix(&a, "--expect-np=")) expect = std::string(a);
    }
    for (absl::string_view part : absl::StrSplit(expect, ',', absl::SkipEmpty())) {
      int n = 0;
      if (absl::SimpleAtoi(part, &n)) o->expect_np.push_back(n);
    }
    return o;
  }();
  return *opts;
}

bool PhaseSaves() { return Options().phase == "save" || Options().phase == "all"; }
bool PhaseAll() { return Options().phase == "all"; }
bool PhaseRestore() { return Options().phase == "restore"; }

// ------------------------------------------------------------- the tensors

const std::vector<TensorSpec>& Tensors() {
  static const std::vector<TensorSpec>* specs = [] {
    auto* v = new std::vector<TensorSpec>;
    for (DType d : AllDTypes()) {  // Every dtype on an uneven 13x7.
      v->push_back({absl::StrCat("dtypes/", DTypeName(d)), d, {13, 7}});
    }
    v->push_back({"shapes/vec17", DType::kFloat32, {17}});
    v->push_back({"shapes/vec17_str", DType::kString, {17}});
    v->push_back({"shapes/scalar_f64", DType::kFloat64, {}});
    v->push_back({"shapes/scalar_str", DType::kString, {}});
    v->push_back({"shapes/scalar_bf16", DType::kBfloat16, {}});
    v->push_back({"shapes/zero_rows", DType::kFloat32, {0, 4}});
    v->push_back({"shapes/zero_mid_str", DType::kString, {3, 0, 2}});
    v->push_back({"shapes/zero_vec_i8", DType::kInt8, {0}});
    v->push_back({"shapes/empty_shards", DType::kInt32, {2, 5}});
    v->push_back({"shapes/empty_shards_str", DType::kString, {2, 5}});
    v->push_back({"shapes/empty_shards_c128", DType::kComplex128, {2, 5}});
    v->push_back({"shapes/tiny_bool", DType::kBool, {3}});
    v->push_back({"shapes/cube", DType::kFloat32, {5, 4, 3}});
    v->push_back({"shapes/cube_u16", DType::kUint16, {3, 11, 2}});
    v->push_back({"shapes/big_f64", DType::kFloat64, {129, 65}});
    v->push_back({"shapes/wide_i64", DType::kInt64, {2, 301}});
    v->push_back({"shapes/large_f32", DType::kFloat32, {257, 131}});  // 132 KB
    v->push_back({"model/dense/kernel", DType::kFloat32, {17, 13}});
    v->push_back({"model/dense/bias", DType::kFloat32, {13}});
    v->push_back({"model/embedding/vocab", DType::kString, {31, 2}});
    v->push_back({"model/layer_norm/scale", DType::kBfloat16, {19}});
    v->push_back({"model/layer_norm/offset", DType::kFloat16, {19}});
    return v;
  }();
  return *specs;
}

// Identifies this build's tensor set; stored in every saved index so a
// checkpoint left by an older build of this test is recognised as stale.
std::string TensorSetFingerprint() {
  std::string all;
  for (const TensorSpec& t : Tensors()) {
    absl::StrAppend(&all, t.key, ":", static_cast<int>(t.dtype), ":",
                    absl::StrJoin(t.shape, ","), ";");
  }
  return absl::StrCat(absl::Hex(test::KeyHash(all)));
}

// ---------------------------------------------------------- configurations

struct Config {
  std::string name;  // e.g. "x2y4-mixed"
  std::vector<MeshDimension> dims;
  bool mixed = false;  // style of tensor i: (i + offset) % kNumStyles
  Style style = Style::kRows;
  int offset = 0;
  int64_t tile_bytes = int64_t{1} << 20;
  // Saves: how data is written. Targets: how it is read back.
  TransferMode mode = TransferMode::kDirect;
  std::string device_type = "CPU";
  std::string mesh_name;

  Style StyleOf(int tensor_index) const {
    if (!mixed) return style;
    return static_cast<Style>((tensor_index + offset) % test::kNumStyles);
  }
};

std::string DimsName(const std::vector<MeshDimension>& dims) {
  std::string s;
  for (const MeshDimension& d : dims) absl::StrAppend(&s, d.name, d.size);
  return s;
}

Config Fixed(std::vector<MeshDimension> dims, Style style) {
  Config c;
  c.name = absl::StrCat(DimsName(dims), "-", test::StyleName(style));
  c.dims = std::move(dims);
  c.style = style;
  return c;
}
Config Mixed(std::vector<MeshDimension> dims, int offset) {
  Config c;
  c.name = absl::StrCat(DimsName(dims), "-mixed", offset);
  c.dims = std::move(dims);
  c.mixed = true;
  c.offset = offset;
  return c;
}

// What a job of `np` ranks saves. Every mesh's device count divides by np.
std::vector<Config> SaveConfigs(int np) {
  std::vector<Config> out;
  // 1-D mesh, one device per rank, every style somewhere, tiny tiles.
  out.push_back(Mixed({{"x", np}}, 0));
  out.back().tile_bytes = 256;
  // 2-D mesh, 3 devices per rank, both dims sharded, collective transfers.
  out.push_back(Fixed({{"a", np}, {"b", 3}}, Style::kGrid));
  out.back().mode = TransferMode::kCollective;
  out.back().device_type = "GPU";  // Restored onto CPU meshes.
  out.back().mesh_name = "train";
  // 8 devices (on 1, 2, 4 ranks) or 6 (on 3), 2-D, mixed, independent
  // MPI-IO (no chunk locations in the index: direct restores ask HDF5).
  if (np == 3) {
    out.push_back(Mixed({{"x", 3}, {"y", 2}}, 2));
  } else {
    out.push_back(Mixed({{"x", 2}, {"y", 4}}, 2));
  }
  out.back().tile_bytes = 512;
  out.back().mode = TransferMode::kIndependent;
  // Everything replicated over 2 devices per rank: writers must spread.
  out.push_back(Fixed({{"r", np}, {"s", 2}}, Style::kReplicated));
  out.back().tile_bytes = 4096;
  out.back().mode = TransferMode::kCollective;
  // Many devices on a 1-D mesh: x=6 on 1..3 ranks, x=8 on 4; last dims split.
  out.push_back(Fixed({{"x", np == 4 ? 8 : 6}}, Style::kCols));
  out.back().tile_bytes = 100;  // Not a multiple of any element size.
  return out;
}

// What a job of `np` ranks restores onto.
std::vector<Config> TargetConfigs(int np) {
  std::vector<Config> out;
  out.push_back(Fixed({{"x", np}}, Style::kRows));
  out.push_back(Fixed({{"a", np}, {"b", 3}}, Style::kTransposed));
  out.back().mode = TransferMode::kIndependent;  // Read through MPI-IO.
  if (np == 3) {
    out.push_back(Fixed({{"y", 3}, {"x", 2}}, Style::kGrid));
  } else {
    out.push_back(Fixed({{"x", 2}, {"y", 4}}, Style::kCols));
  }
  out.push_back(Fixed({{"x", 2 * np}}, Style::kReplicated));
  out.push_back(Mixed({{"p", 1}, {"q", 2 * np}, {"r", 2}}, 1));
  return out;
}

std::string PrefixFor(int np, const Config& c) {
  return (fs::path(Options().dir) / absl::StrCat("save-np", np, "-", c.name))
      .string();
}

Mesh MeshOf(const Config& c, Communicator& world) {
  return Mesh::Create(c.dims, world.rank(), world.size(), c.device_type,
                      c.mesh_name)
      .value();
}

Layout LayoutOf(const Config& c, const Mesh& mesh, int tensor_index) {
  const TensorSpec& t = Tensors()[tensor_index];
  return Layout::Create(
             SpecsFor(c.dims, static_cast<int>(t.shape.size()),
                      c.StyleOf(tensor_index)),
             mesh)
      .value();
}

// Rank 0 prints the matrix as it is covered.
void Log(Communicator& world, const std::string& line) {
  if (world.rank() == 0) std::printf("[matrix] %s\n", line.c_str());
  std::fflush(stdout);
}

// ------------------------------------------------------------------- save

void SaveOne(Communicator& world, const Config& c) {
  const int np = world.size();
  const std::string prefix = PrefixFor(np, c);
  const Mesh mesh = MeshOf(c, world);
  std::vector<DeviceBuffers> bufs;
  bufs.reserve(Tensors().size());
  std::vector<SaveTensor> tensors;
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    const TensorSpec& t = Tensors()[i];
    const Layout layout = LayoutOf(c, mesh, i);
    bufs.push_back(DeviceBuffers::Filled(t, layout));
    tensors.push_back(test::MakeSaveTensor(t, layout, bufs.back().ConstPtrs()));
  }
  SaveOptions opts;
  opts.checksum_tile_bytes = c.tile_bytes;
  opts.transfer_mode = c.mode;
  opts.step = 100 * np + 7;
  opts.user_metadata = {{"config", c.name},
                        {"np", absl::StrCat(np)},
                        {"tensor_set", TensorSetFingerprint()}};
  const absl::Status s = SaveTensors(world, prefix, tensors, opts);
  EXPECT_TRUE(s.ok()) << "save " << prefix << ": " << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << "save " << prefix;
  world.Barrier();
  EXPECT_TRUE(fs::exists(IndexFilePath(prefix))) << IndexFilePath(prefix);
  EXPECT_TRUE(fs::exists(DataFilePath(prefix))) << DataFilePath(prefix);
  if (!s.ok()) return;

  // The index: every tensor with its dtype, shape and saved layout; chunks
  // are distinct shards of that layout, disjoint, covering the tensor once.
  absl::StatusOr<proto::CheckpointIndexProto> index =
      ReadCheckpointIndex(world, prefix);
  ASSERT_TRUE(index.ok()) << prefix << ": " << index.status();
  EXPECT_EQ(index->step(), opts.step);
  EXPECT_EQ(index->user_metadata().count("config") ? index->user_metadata().at("config") : "",
            c.name);
  ASSERT_EQ(index->mesh().dimensions_size(), static_cast<int>(c.dims.size()));
  for (int d = 0; d < index->mesh().dimensions_size(); ++d) {
    EXPECT_EQ(index->mesh().dimensions(d).name(), c.dims[d].name);
    EXPECT_EQ(index->mesh().dimensions(d).size(), c.dims[d].size);
  }
  EXPECT_EQ(index->tensors_size(), static_cast<int>(Tensors().size()));
  std::vector<int64_t> chunks_per_rank(np, 0);
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    const TensorSpec& t = Tensors()[i];
    const proto::TensorEntryProto* e = nullptr;
    for (const auto& entry : index->tensors()) {
      if (entry.key() == t.key) e = &entry;
    }
    if (e == nullptr) {
      ADD_FAILURE() << prefix << ": index has no tensor " << t.key;
      continue;
    }
    EXPECT_EQ(static_cast<int>(e->dtype()), static_cast<int>(t.dtype)) << t.key;
    EXPECT_EQ(std::vector<int64_t>(e->shape().begin(), e->shape().end()), t.shape)
        << t.key;
    const Layout layout = LayoutOf(c, mesh, i);
    EXPECT_EQ(std::vector<std::string>(e->layout().sharding_specs().begin(),
                                       e->layout().sharding_specs().end()),
              layout.sharding_specs())
        << t.key;
    const ShardMap map = ShardMap::Create(layout, t.shape).value();
    std::set<std::string> shard_boxes;
    int64_t non_empty_shards = 0;
    for (int64_t sh = 0; sh < map.num_shards(); ++sh) {
      if (map.ShardBox(sh).empty()) continue;
      ++non_empty_shards;
      shard_boxes.insert(map.ShardBox(sh).ToString());
    }
    std::vector<Box> boxes;
    int64_t covered = 0;
    for (const proto::ChunkProto& ch : e->chunks()) {
      absl::StatusOr<Box> b = Box::Create(
          std::vector<int64_t>(ch.origin().begin(), ch.origin().end()),
          std::vector<int64_t>(ch.shape().begin(), ch.shape().end()));
      if (!b.ok() || b->rank() != static_cast<int>(t.shape.size())) {
        ADD_FAILURE() << t.key << ": bad chunk box";
        continue;
      }
      EXPECT_TRUE(Box::FromShape(t.shape).Contains(*b)) << t.key << " " << *b;
      EXPECT_TRUE(shard_boxes.count(b->ToString()))
          << t.key << ": chunk " << *b << " is not a shard of " << layout.ToString();
      for (const Box& o : boxes) {
        EXPECT_TRUE(Intersect(o, *b).empty())
            << t.key << ": chunks " << o << " and " << *b << " overlap";
      }
      EXPECT_GE(ch.writer_rank(), 0);
      EXPECT_LT(ch.writer_rank(), np);
      if (ch.writer_rank() >= 0 && ch.writer_rank() < np) {
        ++chunks_per_rank[ch.writer_rank()];
      }
      covered += b->num_elements();
      boxes.push_back(*b);
    }
    EXPECT_EQ(covered, test::NumElements(t.shape)) << prefix << " " << t.key;
    EXPECT_EQ(static_cast<int64_t>(boxes.size()), non_empty_shards)
        << prefix << " " << t.key;
  }
  if (!c.mixed && c.style == Style::kReplicated) {
    // Replicated tensors must not all be written by rank 0.
    for (int r = 0; r < np; ++r) {
      EXPECT_GT(chunks_per_rank[r], 0)
          << prefix << ": rank " << r << " wrote no replicated tensor; per rank: "
          << absl::StrJoin(chunks_per_rank, ",");
    }
  }
}

// ---------------------------------------------------------------- restore

// Checkpoints present in the directory: (np, config name), from rank 0.
std::vector<std::pair<int, std::string>> ListSaved(Communicator& world) {
  std::string joined;
  if (world.rank() == 0) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(Options().dir, ec)) {
      const std::string f = entry.path().filename().string();
      if (absl::StartsWith(f, "save-np") && absl::EndsWith(f, ".index")) {
        names.push_back(f.substr(0, f.size() - 6));
      }
    }
    std::sort(names.begin(), names.end());
    joined = absl::StrJoin(names, "\n");
  }
  world.Broadcast(&joined, 0);
  std::vector<std::pair<int, std::string>> out;
  for (absl::string_view name : absl::StrSplit(joined, '\n', absl::SkipEmpty())) {
    absl::string_view rest = name;
    absl::ConsumePrefix(&rest, "save-np");
    const size_t dash = rest.find('-');
    int np = 0;
    if (dash == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dash), &np)) {
      continue;
    }
    out.push_back({np, std::string(rest.substr(dash + 1))});
  }
  return out;
}

std::string SavedPrefix(int np, const std::string& config) {
  return (fs::path(Options().dir) / absl::StrCat("save-np", np, "-", config))
      .string();
}

// Restores the tensors whose index `want(i)` is true from `prefix` onto
// target `c` of this job and checks every buffer: wanted ones hold the
// values, the others are untouched. Returns the number of bad elements on
// this rank.
template <typename Want>
int64_t RestoreAndCheck(Communicator& world, const std::string& prefix,
                        const std::string& label, const Config& c, Want want) {
  const Mesh mesh = MeshOf(c, world);
  std::vector<DeviceBuffers> bufs;
  bufs.reserve(Tensors().size());
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    bufs.push_back(DeviceBuffers::Sentinel(Tensors()[i], LayoutOf(c, mesh, i)));
  }
  std::vector<RestoreTensor> tensors;
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    if (!want(i)) continue;
    const TensorSpec& t = Tensors()[i];
    tensors.push_back(test::MakeRestoreTensor(t, LayoutOf(c, mesh, i), bufs[i].Ptrs()));
  }
  RestoreOptions opts;
  opts.transfer_mode = c.mode;
  const absl::Status s = RestoreTensors(world, prefix, tensors, opts);
  EXPECT_TRUE(s.ok()) << label << ": " << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << label;
  int64_t bad = 0;
  std::string report;
  if (s.ok()) {
    for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
      bad += bufs[i].Check(want(i), world.rank(), &report);
    }
  }
  EXPECT_EQ(bad, 0) << label << " (rank " << world.rank() << "):\n" << report;
  const int64_t all_bad = test::SumOverRanks(world, bad);
  Log(world, absl::StrCat(label, ": ", s.ok() ? "restored" : "FAILED", ", ",
                          all_bad, " bad elements over all ranks"));
  return bad;
}

void RestoreOntoAllTargets(Communicator& world, int save_np,
                           const std::string& config) {
  const std::string prefix = SavedPrefix(save_np, config);
  for (const Config& t : TargetConfigs(world.size())) {
    const std::string label = absl::StrCat("np", save_np, " ", config, " -> np",
                                           world.size(), " ", t.name);
    RestoreAndCheck(world, prefix, label, t, [](int) { return true; });
  }
}

// ------------------------------------------------------------------ tests

TEST(ReshardMatrix, Save) {
  if (!PhaseSaves()) GTEST_SKIP() << "phase " << Options().phase;
  Communicator& world = TestWorld();
  const int np = world.size();
  if (world.rank() == 0) {
    std::error_code ec;
    fs::create_directories(Options().dir, ec);
    ASSERT_FALSE(ec) << Options().dir << ": " << ec.message();
    // Stale checkpoints (and temporaries) of this rank count only.
    const std::string mine = absl::StrCat("save-np", np, "-");
    for (const auto& entry : fs::directory_iterator(Options().dir, ec)) {
      if (absl::StartsWith(entry.path().filename().string(), mine)) {
        fs::remove_all(entry.path(), ec);
      }
    }
  }
  world.Barrier();
  for (const Config& c : SaveConfigs(np)) {
    SCOPED_TRACE(PrefixFor(np, c));
    SaveOne(world, c);
    Log(world, absl::StrCat("saved np", np, " ", c.name));
  }
}

TEST(ReshardMatrix, RestoreOwnSavesOntoEveryTarget) {
  if (!PhaseAll()) GTEST_SKIP() << "phase " << Options().phase;
  Communicator& world = TestWorld();
  for (const Config& c : SaveConfigs(world.size())) {
    RestoreOntoAllTargets(world, world.size(), c.name);
  }
}

TEST(ReshardMatrix, RestoreSavesOfOtherJobs) {
  if (Options().phase == "save") GTEST_SKIP() << "phase save";
  Communicator& world = TestWorld();
  const std::vector<std::pair<int, std::string>> saved = ListSaved(world);
  std::set<int> present;
  int restored = 0;
  for (const auto& [np, config] : saved) {
    if (PhaseAll() && np == world.size()) continue;  // Done above.
    // A checkpoint from an older build of this test holds other tensors.
    const absl::StatusOr<proto::CheckpointIndexProto> index =
        ReadCheckpointIndex(world, SavedPrefix(np, config));
    ASSERT_TRUE(index.ok()) << SavedPrefix(np, config) << ": " << index.status();
    const auto it = index->user_metadata().find("tensor_set");
    if (it == index->user_metadata().end() || it->second != TensorSetFingerprint()) {
      Log(world, absl::StrCat("skipping stale ", SavedPrefix(np, config)));
      EXPECT_FALSE(PhaseRestore())
          << SavedPrefix(np, config) << " was saved by another build of this "
          << "test; the save jobs should have replaced it";
      continue;
    }
    present.insert(np);
    RestoreOntoAllTargets(world, np, config);
    ++restored;
  }
  if (PhaseRestore()) {
    for (int np : Options().expect_np) {
      EXPECT_TRUE(present.count(np))
          << "no checkpoint saved by " << np << " ranks in " << Options().dir
          << " (did reshard_matrix_test_np" << np << " run and pass?)";
      // Each of its configurations must be there.
      for (const Config& c : SaveConfigs(np)) {
        EXPECT_TRUE(std::find(saved.begin(), saved.end(),
                              std::make_pair(np, c.name)) != saved.end())
            << "missing " << SavedPrefix(np, c.name);
      }
    }
    EXPECT_GT(restored, 0);
  }
}

// Restoring some keys reads only those and leaves other buffers untouched.
TEST(ReshardMatrix, RestoreSubsetLeavesOthersUntouched) {
  if (Options().phase == "save") GTEST_SKIP() << "phase save";
  Communicator& world = TestWorld();
  std::vector<std::pair<int, std::string>> sources;
  if (PhaseAll()) {
    sources.push_back({world.size(), SaveConfigs(world.size())[0].name});
  } else {
    std::set<int> seen;  // One checkpoint per saving rank count.
    for (const auto& [np, config] : ListSaved(world)) {
      if (seen.insert(np).second) sources.push_back({np, config});
    }
  }
  ASSERT_FALSE(sources.empty());
  const std::vector<Config> targets = TargetConfigs(world.size());
  for (size_t k = 0; k < sources.size(); ++k) {
    const auto& [np, config] = sources[k];
    const Config& t = targets[k % targets.size()];
    for (int mod = 0; mod < 3; ++mod) {
      RestoreAndCheck(
          world, SavedPrefix(np, config),
          absl::StrCat("subset i%3==", mod, " of np", np, " ", config, " -> np",
                       world.size(), " ", t.name),
          t, [mod](int i) { return i % 3 == mod; });
    }
    // Nothing asked for: OK, nothing touched.
    RestoreAndCheck(world, SavedPrefix(np, config),
                    absl::StrCat("empty request of np", np, " ", config), t,
                    [](int) { return false; });
  }
}

// A failed restore returns the same error on every rank and touches nothing
// it should not; a later restore works.
TEST(ReshardMatrix, RestoreErrorsAreTheSameOnEveryRank) {
  if (Options().phase == "save") GTEST_SKIP() << "phase save";
  Communicator& world = TestWorld();
  std::vector<std::pair<int, std::string>> saved = ListSaved(world);
  ASSERT_FALSE(saved.empty());
  if (PhaseAll()) {
    saved = {{world.size(), SaveConfigs(world.size())[0].name}};
  }
  const Config target = TargetConfigs(world.size())[1];
  const Mesh mesh = MeshOf(target, world);
  int kernel = -1;
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    if (Tensors()[i].key == "model/dense/kernel") kernel = i;
  }
  ASSERT_GE(kernel, 0);
  const TensorSpec& k = Tensors()[kernel];

  auto attempt = [&](const std::string& prefix, TensorSpec spec,
                     absl::StatusCode want, const std::string& what) {
    const Layout layout =
        Layout::Create(SpecsFor(target.dims, static_cast<int>(spec.shape.size()),
                                Style::kTransposed),
                       mesh)
            .value();
    DeviceBuffers buf = DeviceBuffers::Sentinel(spec, layout);
    const absl::Status s = RestoreTensors(
        world, prefix, {test::MakeRestoreTensor(spec, layout, buf.Ptrs())},
        RestoreOptions());
    EXPECT_EQ(s.code(), want) << what << " (" << prefix << "): " << s;
    EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << what;
    std::string report;
    EXPECT_EQ(buf.Check(false, world.rank(), &report), 0)
        << what << ": a failed restore wrote into the buffer\n" << report;
    Log(world, absl::StrCat("error case ", what, " on ", prefix, " -> ",
                            s.ToString()));
    return s;
  };

  for (const auto& [np, config] : saved) {
    const std::string prefix = SavedPrefix(np, config);
    (void)attempt(prefix, {"model/no/such/tensor", DType::kFloat32, {17, 13}},
            absl::StatusCode::kNotFound, "unknown key");
    const absl::Status dt = attempt(prefix, {k.key, DType::kFloat64, k.shape},
                                    absl::StatusCode::kFailedPrecondition,
                                    "dtype mismatch");
    EXPECT_TRUE(absl::StrContains(dt.message(), "float32") &&
                absl::StrContains(dt.message(), "float64"))
        << "dtype mismatch message should name both dtypes: " << dt;
    EXPECT_TRUE(absl::StrContains(dt.message(), k.key))
        << "message should name the tensor: " << dt;
    (void)attempt(prefix, {k.key, k.dtype, {13, 17}},
            absl::StatusCode::kFailedPrecondition, "shape mismatch (transposed)");
    (void)attempt(prefix, {k.key, k.dtype, {17, 12}},
            absl::StatusCode::kFailedPrecondition, "shape mismatch (smaller)");
    (void)attempt(prefix, {k.key, k.dtype, {17, 13, 1}},
            absl::StatusCode::kFailedPrecondition, "shape mismatch (rank)");
    // And the checkpoint is still fine afterwards.
    RestoreAndCheck(world, prefix,
                    absl::StrCat("after errors np", np, " ", config), target,
                    [kernel](int i) { return i == kernel; });
  }
  (void)attempt((fs::path(Options().dir) / "no-such-checkpoint").string(), k,
          absl::StatusCode::kNotFound, "missing prefix");
  const absl::StatusOr<proto::CheckpointIndexProto> idx = ReadCheckpointIndex(
      world, (fs::path(Options().dir) / "no-such-checkpoint").string());
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kNotFound) << idx.status();
  EXPECT_EQ(test::DescribeStatusDisagreement(world, idx.status()), "");
}

}  // namespace
}  // namespace meshckpt
