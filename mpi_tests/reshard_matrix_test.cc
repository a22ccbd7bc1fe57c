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
//
// The tensors, configurations and checked restore are in
// reshard_matrix_fixture.h; this file holds the tests, which must stay in
// one program because `all` runs them in order on the checkpoints its own
// Save test just wrote.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/reshard_matrix_fixture.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using reshard_matrix::Config;
using reshard_matrix::LayoutOf;
using reshard_matrix::ListSaved;
using reshard_matrix::Log;
using reshard_matrix::MeshOf;
using reshard_matrix::Options;
using reshard_matrix::PhaseAll;
using reshard_matrix::PhaseRestore;
using reshard_matrix::PhaseSaves;
using reshard_matrix::PrefixFor;
using reshard_matrix::RestoreAndCheck;
using reshard_matrix::SaveConfigs;
using reshard_matrix::SavedPrefix;
using reshard_matrix::TargetConfigs;
using reshard_matrix::Tensors;
using reshard_matrix::TensorSetFingerprint;
using test::DeviceBuffers;
using test::SpecsFor;
using test::Style;
using test::TensorSpec;

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
  IoOptions opts;
  opts.checksum_tile_bytes = c.tile_bytes;
  opts.transfer_mode = c.mode;
  CheckpointContents contents;
  contents.step = 100 * np + 7;
  contents.user_metadata = {{"config", c.name},
                            {"np", absl::StrCat(np)},
                            {"tensor_set", TensorSetFingerprint()}};
  const absl::Status s = SaveTensors(world, prefix, tensors, contents, opts);
  EXPECT_TRUE(s.ok()) << "save " << prefix << ": " << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << "save " << prefix;
  world.Barrier();
  EXPECT_TRUE(fs::exists(IndexFilePath(prefix))) << IndexFilePath(prefix);
  EXPECT_TRUE(fs::exists(DataFilePath(prefix))) << DataFilePath(prefix);
  if (!s.ok()) return;

  // The index: every tensor with its dtype, shape and saved layout; chunks
  // are distinct shards of that layout, disjoint, covering the tensor once.
  absl::StatusOr<IndexRecord> index = ReadCheckpointIndex(world, prefix);
  ASSERT_TRUE(index.ok()) << prefix << ": " << index.status();
  EXPECT_EQ(index->step, contents.step);
  EXPECT_EQ(index->user_metadata.count("config") ? index->user_metadata.at("config") : "",
            c.name);
  ASSERT_EQ(index->mesh.dims().size(), c.dims.size());
  for (size_t d = 0; d < index->mesh.dims().size(); ++d) {
    EXPECT_EQ(index->mesh.dims()[d].name, c.dims[d].name);
    EXPECT_EQ(index->mesh.dims()[d].size, c.dims[d].size);
  }
  EXPECT_EQ(index->tensors.size(), Tensors().size());
  std::vector<int64_t> chunks_per_rank(np, 0);
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    const TensorSpec& t = Tensors()[i];
    const TensorRecord* e = nullptr;
    for (const TensorRecord& entry : index->tensors) {
      if (entry.key == t.key) e = &entry;
    }
    if (e == nullptr) {
      ADD_FAILURE() << prefix << ": index has no tensor " << t.key;
      continue;
    }
    EXPECT_EQ(e->dtype, t.dtype) << t.key;
    EXPECT_EQ(e->shape, t.shape) << t.key;
    const Layout layout = LayoutOf(c, mesh, i);
    EXPECT_EQ(e->layout.sharding_specs(), layout.sharding_specs()) << t.key;
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
    for (const ChunkRecord& ch : e->chunks) {
      const Box* b = &ch.box;
      if (b->rank() != static_cast<int>(t.shape.size())) {
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
      EXPECT_GE(ch.writer_rank, 0);
      EXPECT_LT(ch.writer_rank, np);
      if (ch.writer_rank >= 0 && ch.writer_rank < np) {
        ++chunks_per_rank[ch.writer_rank];
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

void RestoreOntoAllTargets(Communicator& world, int save_np, const std::string& config) {
  const std::string prefix = SavedPrefix(save_np, config);
  for (const Config& t : TargetConfigs(world.size())) {
    const std::string label =
        absl::StrCat("np", save_np, " ", config, " -> np", world.size(), " ", t.name);
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
    const absl::StatusOr<IndexRecord> index =
        ReadCheckpointIndex(world, SavedPrefix(np, config));
    ASSERT_TRUE(index.ok()) << SavedPrefix(np, config) << ": " << index.status();
    const auto it = index->user_metadata.find("tensor_set");
    if (it == index->user_metadata.end() || it->second != TensorSetFingerprint()) {
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
        EXPECT_TRUE(std::find(saved.begin(), saved.end(), std::make_pair(np, c.name)) !=
                    saved.end())
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
      RestoreAndCheck(world, SavedPrefix(np, config),
                      absl::StrCat("subset i%3==", mod, " of np", np, " ", config,
                                   " -> np", world.size(), " ", t.name),
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

  auto attempt = [&](const std::string& prefix, TensorSpec spec, absl::StatusCode want,
                     const std::string& what) {
    const Layout layout =
        Layout::Create(SpecsFor(target.dims, static_cast<int>(spec.shape.size()),
                                Style::kTransposed),
                       mesh)
            .value();
    DeviceBuffers buf = DeviceBuffers::Sentinel(spec, layout);
    const absl::Status s = RestoreTensors(
        world, prefix, {test::MakeRestoreTensor(spec, layout, buf.Ptrs())}, IoOptions());
    EXPECT_EQ(s.code(), want) << what << " (" << prefix << "): " << s;
    EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << what;
    std::string report;
    EXPECT_EQ(buf.Check(false, world.rank(), &report), 0)
        << what << ": a failed restore wrote into the buffer\n"
        << report;
    Log(world, absl::StrCat("error case ", what, " on ", prefix, " -> ", s.ToString()));
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
    RestoreAndCheck(world, prefix, absl::StrCat("after errors np", np, " ", config),
                    target, [kernel](int i) { return i == kernel; });
  }
  (void)attempt((fs::path(Options().dir) / "no-such-checkpoint").string(), k,
                absl::StatusCode::kNotFound, "missing prefix");
  const absl::StatusOr<IndexRecord> idx = ReadCheckpointIndex(
      world, (fs::path(Options().dir) / "no-such-checkpoint").string());
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kNotFound) << idx.status();
  EXPECT_EQ(test::DescribeStatusDisagreement(world, idx.status()), "");
}

}  // namespace
}  // namespace meshckpt
