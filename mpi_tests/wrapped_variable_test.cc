// Variables over caller memory across rank counts: a 4-rank job (2 devices
// per rank, so local devices share replicated shards) saves variables that
// wrap the test's own buffers (phase save); 2- and 3-rank jobs on another
// mesh and other layouts restore into wrapped buffers (phase restore).
// Values are a function of (tensor, dtype, global index), compared bit by
// bit, and a guard after every buffer must stay untouched.
//
//   wrapped_variable_test --dir=DIR --phase=save|restore
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

constexpr int kGuardBytes = 16;

struct Spec {
  test::TensorSpec t;
  std::vector<std::string> save_specs, restore_specs;  // Layouts.
};

// Save mesh batch=2,model=4; restore mesh r=2,x=3 (uneven splits of 13, 10,
// 7 and 6 ways among them). Unnamed mesh dims replicate: shared buffers.
const std::vector<Spec>& Specs() {
  static const auto* specs = new std::vector<Spec>{
      {{"f32", DType::kFloat32, {13, 9}}, {"model", "unsharded"}, {"unsharded", "x"}},
      {{"f64", DType::kFloat64, {10}}, {"unsharded"}, {"x"}},
      {{"bf16", DType::kBfloat16, {7, 5}}, {"batch", "model"}, {"x", "r"}},
      {{"c128", DType::kComplex128, {6, 4}}, {"unsharded", "model"}, {"r", "unsharded"}},
      {{"i64", DType::kInt64, {3, 3, 4}},
       {"unsharded", "batch", "model"},
       {"x", "unsharded", "unsharded"}},
  };
  return *specs;
}

// The caller's memory for one variable: a block per distinct local shard,
// 8-byte aligned, each followed by kGuardBytes of sentinel.
struct Owned {
  const Spec* spec;
  ShardMap map;
  std::vector<std::vector<uint64_t>> blocks;
  std::vector<void*> pointers;

  Owned(const Spec& s, const Layout& layout)
      : spec(&s), map(ShardMap::Create(layout, s.t.shape).value()) {
    const int64_t size = DTypeSize(s.t.dtype);
    for (int64_t shard : map.LocalShards()) {
      const int64_t bytes = map.ShardBox(shard).num_elements() * size + kGuardBytes;
      blocks.emplace_back((bytes + 7) / 8);
      std::memset(blocks.back().data(), test::kSentinelByte, blocks.back().size() * 8);
    }
    for (auto& b : blocks) pointers.push_back(b.data());
  }
  void Fill() {
    const std::vector<int64_t> shards = map.LocalShards();
    const int64_t size = DTypeSize(spec->t.dtype);
    for (size_t i = 0; i < shards.size(); ++i) {
      char* out = reinterpret_cast<char*>(pointers[i]);
      test::ForEachInBox(map.ShardBox(shards[i]), spec->t.shape,
                         [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
                           test::ExpectedElement(spec->t.dtype,
                                                 test::KeyHash(spec->t.key), g,
                                                 out + size * local);
                         });
    }
  }
  // Elements that differ from the expected bytes, plus touched guard bytes.
  int64_t CountWrong() const {
    const std::vector<int64_t> shards = map.LocalShards();
    const int64_t size = DTypeSize(spec->t.dtype);
    int64_t bad = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const char* got = reinterpret_cast<const char*>(pointers[i]);
      const Box box = map.ShardBox(shards[i]);
      test::ForEachInBox(
          box, spec->t.shape, [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
            char want[16];
            test::ExpectedElement(spec->t.dtype, test::KeyHash(spec->t.key), g, want);
            bad += std::memcmp(want, got + size * local, size) != 0;
          });
      for (int64_t k = 0; k < kGuardBytes; ++k) {
        bad += static_cast<unsigned char>(got[box.num_elements() * size + k]) !=
               test::kSentinelByte;
      }
    }
    return bad;
  }
};

struct Model {
  Module root;
  std::vector<std::unique_ptr<Owned>> owned;
};

std::unique_ptr<Model> Build(const Mesh& mesh, bool save_layouts) {
  auto m = std::make_unique<Model>();
  for (const Spec& s : Specs()) {
    const Layout layout =
        Layout::Create(save_layouts ? s.save_specs : s.restore_specs, mesh).value();
    m->owned.push_back(std::make_unique<Owned>(s, layout));
    absl::StatusOr<DVariable*> v = m->root.WrapVariable(
        s.t.key, s.t.dtype, s.t.shape, layout, m->owned.back()->pointers);
    EXPECT_TRUE(v.ok()) << v.status();
  }
  return m;
}

void ExpectAllValues(const Model& m, Communicator& comm) {
  for (const auto& o : m.owned) {
    EXPECT_EQ(o->CountWrong(), 0) << o->spec->t.key << " on rank " << comm.rank()
                                  << " layout " << o->map.layout().ToString();
  }
}

std::string SaveDir() { return TestArg("--dir=") + "/np4"; }

TEST(WrappedVariable, Phase) {
  Communicator& world = TestWorld();
  const std::string phase = TestArg("--phase=");
  ASSERT_FALSE(TestArg("--dir=").empty()) << "needs --dir=";
  if (phase == "save") {
    ASSERT_EQ(world.size(), 4);
    if (world.rank() == 0) {
      const std::string cmd =
          absl::StrCat("rm -rf ", SaveDir(), " && mkdir -p ", SaveDir());
      ASSERT_EQ(std::system(cmd.c_str()), 0);
    }
    world.Barrier();
    Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, world.rank(), 4).value();
    auto m = Build(mesh, /*save_layouts=*/true);
    for (auto& o : m->owned) o->Fill();
    auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &m->root).value();
    absl::StatusOr<std::string> path = ckpt->Save(SaveDir() + "/ckpt");
    ASSERT_TRUE(path.ok()) << path.status();
    ExpectAllValues(*m, world);  // Saving read the buffers, changed nothing.
    return;
  }
  ASSERT_EQ(phase, "restore");
  const std::string latest = LatestCheckpoint(SaveDir()).value();
  Mesh mesh = Mesh::Create({{"r", 2}, {"x", 3}}, world.rank(), world.size()).value();
  auto m = Build(mesh, /*save_layouts=*/false);
  auto ckpt = DTensorCheckpoint::Create(&world, mesh, {}, &m->root).value();
  absl::StatusOr<LoadStatus> st = ckpt->Restore(latest);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->AssertConsumed().ok()) << st->AssertConsumed();
  ExpectAllValues(*m, world);
}

}  // namespace
}  // namespace meshckpt
