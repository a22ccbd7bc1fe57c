// Every rank must compute the same shard map, writers and reshard plans
// without talking to the others. Each rank computes the whole plan for a set
// of meshes, layouts and shapes, serializes it, and all ranks compare.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/reshard_plan.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

struct Case {
  std::vector<MeshDimension> dims;
  std::vector<std::string> specs;
  std::vector<int64_t> shape;
};

// The whole plan as text: writers, every device's box, and how every device
// of a target layout would read from the saved chunks.
std::string PlanDigest(const Mesh& mesh, const std::vector<Case>& cases) {
  std::string out;
  WriterAssigner assigner(mesh.num_ranks());
  for (const Case& c : cases) {
    Layout layout = Layout::Create(c.specs, mesh).value();
    ShardMap map = ShardMap::Create(layout, c.shape).value();
    std::vector<Box> chunks;
    for (const ShardWriter& w : assigner.Assign(map, 4)) {
      absl::StrAppend(&out, "w", w.shard, "@", w.device, "/", w.rank, w.box.ToString(),
                      ";");
      chunks.push_back(w.box);
    }
    // Target: the same tensor replicated, then sharded on the last dim.
    Layout target = Layout::ShardedAlong(mesh, layout.rank(), layout.rank() - 1,
                                         mesh.dims().back().name)
                        .value();
    ShardMap tmap = ShardMap::Create(target, c.shape).value();
    for (int64_t d = 0; d < mesh.num_devices(); ++d) {
      absl::StrAppend(&out, "d", d, map.DeviceBox(d).ToString());
      const std::vector<ReshardPiece> plan =
          PlanReshard(chunks, tmap.DeviceBox(d)).value();
      for (const ReshardPiece& p : plan) {
        absl::StrAppend(&out, "p", p.chunk, p.in_chunk.ToString(),
                        p.in_target.ToString());
      }
    }
    out += "\n";
  }
  absl::StrAppend(&out, "bytes:");
  for (int64_t b : assigner.bytes_per_rank()) absl::StrAppend(&out, b, ",");
  return out;
}

TEST(PlanAgreement, EveryRankComputesTheSamePlan) {
  Communicator& world = TestWorld();
  const int size = world.size();
  std::vector<std::vector<MeshDimension>> meshes = {
      {{"x", size}},
      {{"batch", 2}, {"model", 4}},  // 8 devices: 8/size per rank when it divides.
      {{"a", size}, {"b", 3}},
      {{"p", 1}, {"q", size * 2}, {"r", 2}},
  };
  int checked = 0;
  for (const auto& dims : meshes) {
    absl::StatusOr<Mesh> mesh = Mesh::Create(dims, world.rank(), size);
    if (!mesh.ok()) continue;  // 8 devices on 3 ranks does not divide.
    std::vector<Case> cases;
    const std::string first = dims[0].name, last = dims.back().name;
    cases.push_back({dims, {first, kUnsharded.data()}, {17, 5}});
    cases.push_back({dims, {kUnsharded.data(), last}, {4, 13}});
    cases.push_back({dims, {kUnsharded.data()}, {7}});  // replicated bias
    cases.push_back({dims, {kUnsharded.data()}, {7}});  // and another
    cases.push_back({dims,
                     {last, first == last ? kUnsharded.data() : first},
                     {3, 2}});  // more shards than rows: empty shards
    cases.push_back({dims,
                     {first, kUnsharded.data(), kUnsharded.data()},
                     {0, 4, 2}});  // zero-size tensor
    const std::string mine = PlanDigest(*mesh, cases);
    const std::vector<std::string> all = world.AllGather(mine);
    for (int r = 0; r < size; ++r) {
      EXPECT_EQ(all[r], all[0])
          << "rank " << r << " disagrees with rank 0 on " << mesh->ToString();
    }
    // Each rank's own devices are the ones the mesh says it holds.
    for (int64_t d : mesh->local_device_ids()) {
      EXPECT_EQ(mesh->RankOfDevice(d), world.rank());
    }
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace meshckpt
