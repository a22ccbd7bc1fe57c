// ShardMap and WriterAssigner against an independent model over random
// meshes, layouts and shapes (tests/layout/random_layouts.h): device boxes
// cover the tensor, distinct shards partition it, each element is held by
// exactly the right devices, and every shard has one writer that holds it,
// balanced and deterministic.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/layout/random_layouts.h"

namespace meshckpt {
namespace {

using ::meshckpt::testing_util::BoxHolds;
using ::meshckpt::testing_util::ForEachIndex;
using ::meshckpt::testing_util::LinearIndex;
using ::meshckpt::testing_util::RandomCase;
using ::meshckpt::testing_util::RandomInt;
using ::meshckpt::testing_util::RandomMesh;
using ::meshckpt::testing_util::RandomShape;
using ::meshckpt::testing_util::RandomShardingCase;

constexpr int kCases = 300;

// ---------------------------------------------------------------------------
// Property tests over random meshes, layouts and shapes.

// The shard index along a dimension of size n split k ways that holds
// element e, computed independently of SplitShard: e / ceil(n/k).
int64_t ExpectedShardIndex(int64_t n, int64_t k, int64_t e) {
  const int64_t b = (n + k - 1) / k;
  return e / b;
}

// Whether `device` should hold the element at `index` according to the split
// rule: for every sharded tensor dim d, the device's coordinate on the mesh
// dim sharding d equals the shard index of index[d].
bool ShouldHold(const Layout& layout, const std::vector<int64_t>& shape, int64_t device,
                const std::vector<int64_t>& index) {
  const std::vector<int64_t> coords = layout.mesh().DeviceCoords(device);
  for (int d = 0; d < layout.rank(); ++d) {
    std::optional<int> m = layout.MeshDimOf(d);
    if (!m.has_value()) continue;
    if (coords[*m] != ExpectedShardIndex(shape[d], layout.NumShards(d), index[d])) {
      return false;
    }
  }
  return true;
}

TEST(ShardMapProperty, DeviceBoxesCoverTheTensor) {
  std::mt19937 rng(1);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    absl::StatusOr<ShardMap> map = ShardMap::Create(rc.layout, rc.shape);
    ASSERT_TRUE(map.ok()) << map.status();
    const Box& global = map->global_box();
    EXPECT_EQ(global, Box::FromShape(rc.shape));
    std::vector<int> covered(global.num_elements(), 0);
    for (int64_t dev = 0; dev < rc.mesh().num_devices(); ++dev) {
      const Box box = map->DeviceBox(dev);
      ASSERT_EQ(box.rank(), global.rank());
      ASSERT_TRUE(global.Contains(box)) << "device " << dev << " box " << box;
      for (int d = 0; d < box.rank(); ++d) {
        EXPECT_GE(box.shape()[d], 0);
        EXPECT_LE(box.shape()[d], map->block_shape()[d]);
      }
      ForEachIndex(box, [&](const std::vector<int64_t>& idx) {
        covered[LinearIndex(rc.shape, idx)] = 1;
      });
    }
    for (size_t i = 0; i < covered.size(); ++i) {
      ASSERT_EQ(covered[i], 1) << "element " << i << " held by no device";
    }
  }
}

TEST(ShardMapProperty, DistinctShardsPartitionTheTensor) {
  std::mt19937 rng(2);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    int64_t want_shards = 1;
    for (int d = 0; d < rc.layout.rank(); ++d) {
      EXPECT_EQ(map.grid_shape()[d], rc.layout.NumShards(d));
      want_shards *= rc.layout.NumShards(d);
    }
    ASSERT_EQ(map.num_shards(), want_shards);
    std::vector<Box> boxes;
    std::vector<int> count(map.global_box().num_elements(), 0);
    int64_t total = 0;
    for (int64_t s = 0; s < map.num_shards(); ++s) {
      boxes.push_back(map.ShardBox(s));
      ASSERT_TRUE(map.global_box().Contains(boxes.back())) << boxes.back();
      total += boxes.back().num_elements();
      ForEachIndex(boxes.back(), [&](const std::vector<int64_t>& idx) {
        ++count[LinearIndex(rc.shape, idx)];
      });
    }
    EXPECT_EQ(total, map.global_box().num_elements());
    for (size_t i = 0; i < boxes.size(); ++i) {
      for (size_t j = i + 1; j < boxes.size(); ++j) {
        EXPECT_TRUE(Intersect(boxes[i], boxes[j]).empty())
            << "shards " << i << " " << boxes[i] << " and " << j << " " << boxes[j]
            << " overlap";
      }
    }
    for (size_t i = 0; i < count.size(); ++i) {
      ASSERT_EQ(count[i], 1) << "element " << i;
    }
  }
}

TEST(ShardMapProperty, EachElementHeldByExactlyTheRightDevices) {
  std::mt19937 rng(3);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    const Mesh& mesh = rc.mesh();
    std::vector<std::vector<int64_t>> holders(map.num_shards());
    for (int64_t dev = 0; dev < mesh.num_devices(); ++dev) {
      const int64_t s = map.ShardOfDevice(dev);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, map.num_shards());
      holders[s].push_back(dev);
      EXPECT_EQ(map.DeviceBox(dev), map.ShardBox(s));
      const Box box = map.DeviceBox(dev);
      ForEachIndex(map.global_box(), [&](const std::vector<int64_t>& idx) {
        const bool want = ShouldHold(rc.layout, rc.shape, dev, idx);
        if (BoxHolds(box, idx) != want) {
          ADD_FAILURE() << "device " << dev << " box " << box
                        << (want ? " lacks" : " has") << " element "
                        << LinearIndex(rc.shape, idx);
        }
      });
    }
    for (int64_t s = 0; s < map.num_shards(); ++s) {
      EXPECT_EQ(map.DevicesOfShard(s), holders[s]) << "shard " << s;
      // Replicas: every mesh dim the layout does not name multiplies the
      // holders.
      int64_t replicas = mesh.num_devices();
      for (int d = 0; d < rc.layout.rank(); ++d) {
        replicas /= rc.layout.NumShards(d);
      }
      EXPECT_EQ(static_cast<int64_t>(holders[s].size()), replicas) << "shard " << s;
    }
    // Devices that differ only on unnamed mesh dims hold the same shard.
    for (int64_t dev = 0; dev < mesh.num_devices(); ++dev) {
      std::vector<int64_t> coords = mesh.DeviceCoords(dev);
      for (int md = 0; md < mesh.num_dims(); ++md) {
        bool named = false;
        for (int d = 0; d < rc.layout.rank(); ++d) {
          named |= rc.layout.MeshDimOf(d) == md;
        }
        if (named) continue;
        std::vector<int64_t> moved = coords;
        moved[md] = (coords[md] + 1) % mesh.dims()[md].size;
        EXPECT_EQ(map.ShardOfDevice(mesh.DeviceAt(moved)), map.ShardOfDevice(dev));
      }
    }
  }
}

TEST(WriterAssignerProperty, EveryNonEmptyShardHasOneWriterThatHoldsIt) {
  std::mt19937 rng(4);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    const Mesh& mesh = rc.mesh();
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    WriterAssigner assigner(mesh.num_ranks());
    // Pre-load the assigner with some other tensors so ties are not the only
    // case exercised.
    std::vector<int64_t> bytes(mesh.num_ranks(), 0);
    const int warmup = static_cast<int>(RandomInt(rng, 0, 3));
    for (int i = 0; i < warmup; ++i) {
      ShardMap other =
          ShardMap::Create(testing_util::RandomLayout(rng, mesh, 1), RandomShape(rng, 1))
              .value();
      for (const ShardWriter& w : assigner.Assign(other, 2)) {
        bytes[w.rank] += w.box.num_elements() * 2;
      }
    }
    ASSERT_EQ(assigner.bytes_per_rank(), bytes);

    const int64_t bpe = RandomInt(rng, 1, 8);
    const std::vector<ShardWriter> writers = assigner.Assign(map, bpe);
    std::vector<int> writers_of(map.num_shards(), 0);
    int64_t prev = -1;
    for (const ShardWriter& w : writers) {
      ASSERT_GE(w.shard, 0);
      ASSERT_LT(w.shard, map.num_shards());
      EXPECT_GT(w.shard, prev) << "ascending by shard";
      prev = w.shard;
      ++writers_of[w.shard];
      EXPECT_EQ(w.box, map.ShardBox(w.shard));
      EXPECT_FALSE(w.box.empty());
      ASSERT_GE(w.device, 0);
      ASSERT_LT(w.device, mesh.num_devices());
      EXPECT_EQ(map.ShardOfDevice(w.device), w.shard)
          << "writer device " << w.device << " does not hold shard " << w.shard;
      EXPECT_EQ(w.rank, mesh.RankOfDevice(w.device));

      // The documented choice: least loaded holding rank, ties to the lower
      // rank, then that rank's lowest holding device.
      int best_rank = -1;
      int64_t best_device = -1;
      for (int64_t dev = 0; dev < mesh.num_devices(); ++dev) {
        if (map.ShardOfDevice(dev) != w.shard) continue;
        const int r = mesh.RankOfDevice(dev);
        if (best_rank < 0 || bytes[r] < bytes[best_rank]) {
          best_rank = r;
          best_device = dev;
        }
      }
      EXPECT_EQ(w.rank, best_rank) << "shard " << w.shard;
      EXPECT_EQ(w.device, best_device) << "shard " << w.shard;
      bytes[w.rank] += w.box.num_elements() * bpe;
    }
    EXPECT_EQ(assigner.bytes_per_rank(), bytes);
    for (int64_t s = 0; s < map.num_shards(); ++s) {
      EXPECT_EQ(writers_of[s], map.ShardBox(s).empty() ? 0 : 1) << "shard " << s;
    }
  }
}

TEST(WriterAssignerProperty, ReplicatedTensorsAreBalanced) {
  std::mt19937 rng(5);
  for (int c = 0; c < kCases; ++c) {
    const Mesh mesh = RandomMesh(rng);
    SCOPED_TRACE(mesh.ToString() + " ranks=" + std::to_string(mesh.num_ranks()));
    WriterAssigner assigner(mesh.num_ranks());
    int64_t largest = 0;
    const int n = static_cast<int>(RandomInt(rng, 1, 40));
    for (int i = 0; i < n; ++i) {
      const int tensor_rank = static_cast<int>(RandomInt(rng, 0, 3));
      const std::vector<int64_t> shape = RandomShape(rng, tensor_rank);
      const int64_t bpe = RandomInt(rng, 1, 8);
      ShardMap map =
          ShardMap::Create(Layout::Replicated(mesh, tensor_rank), shape).value();
      largest = std::max(largest, map.global_box().num_elements() * bpe);
      std::vector<ShardWriter> w = assigner.Assign(map, bpe);
      EXPECT_EQ(w.size(), map.global_box().empty() ? 0u : 1u);
    }
    const std::vector<int64_t>& b = assigner.bytes_per_rank();
    ASSERT_EQ(static_cast<int>(b.size()), mesh.num_ranks());
    const int64_t spread =
        *std::max_element(b.begin(), b.end()) - *std::min_element(b.begin(), b.end());
    EXPECT_LE(spread, largest) << "bytes per rank spread " << spread
                               << " exceeds the largest tensor " << largest;
  }
}

TEST(WriterAssignerProperty, IdenticalReplicatedTensorsSpreadByAtMostOne) {
  std::mt19937 rng(6);
  for (int c = 0; c < kCases; ++c) {
    const Mesh mesh = RandomMesh(rng);
    const int tensor_rank = static_cast<int>(RandomInt(rng, 0, 3));
    std::vector<int64_t> shape = RandomShape(rng, tensor_rank);
    for (int64_t& s : shape) s = std::max<int64_t>(s, 1);
    const int64_t bpe = RandomInt(rng, 1, 8);
    ShardMap map = ShardMap::Create(Layout::Replicated(mesh, tensor_rank), shape).value();
    const int64_t one = map.global_box().num_elements() * bpe;
    WriterAssigner assigner(mesh.num_ranks());
    const int n = static_cast<int>(RandomInt(rng, 1, 50));
    for (int i = 0; i < n; ++i) assigner.Assign(map, bpe);
    const std::vector<int64_t>& b = assigner.bytes_per_rank();
    const int64_t spread =
        *std::max_element(b.begin(), b.end()) - *std::min_element(b.begin(), b.end());
    EXPECT_LE(spread, one) << mesh.ToString() << " ranks=" << mesh.num_ranks()
                           << " n=" << n;
    int64_t total = 0;
    for (int64_t x : b) total += x;
    EXPECT_EQ(total, n * one);
  }
}

TEST(WriterAssignerProperty, Deterministic) {
  std::mt19937 rng(7);
  for (int c = 0; c < kCases / 3; ++c) {
    const Mesh mesh = RandomMesh(rng);
    std::vector<ShardMap> maps;
    std::vector<int64_t> bpes;
    const int n = static_cast<int>(RandomInt(rng, 1, 10));
    for (int i = 0; i < n; ++i) {
      const int tensor_rank = static_cast<int>(RandomInt(rng, 0, 3));
      maps.push_back(ShardMap::Create(testing_util::RandomLayout(rng, mesh, tensor_rank),
                                      RandomShape(rng, tensor_rank))
                         .value());
      bpes.push_back(RandomInt(rng, 1, 8));
    }
    // The second assigner sees the same tensors through a mesh viewed from
    // another rank, as another process of the job would.
    const Mesh other_view = mesh.ForRank(mesh.num_ranks() - 1).value();
    WriterAssigner a(mesh.num_ranks()), b(mesh.num_ranks());
    for (int i = 0; i < n; ++i) {
      SCOPED_TRACE(maps[i].layout().ToString());
      const std::vector<ShardWriter> wa = a.Assign(maps[i], bpes[i]);
      ShardMap other = ShardMap::Create(maps[i].layout().WithMesh(other_view).value(),
                                        maps[i].global_shape())
                           .value();
      const std::vector<ShardWriter> wb = b.Assign(other, bpes[i]);
      ASSERT_EQ(wa.size(), wb.size());
      for (size_t j = 0; j < wa.size(); ++j) {
        EXPECT_EQ(wa[j].shard, wb[j].shard);
        EXPECT_EQ(wa[j].device, wb[j].device);
        EXPECT_EQ(wa[j].rank, wb[j].rank);
        EXPECT_EQ(wa[j].box, wb[j].box);
      }
      EXPECT_EQ(a.bytes_per_rank(), b.bytes_per_rank());
    }
  }
}

}  // namespace
}  // namespace meshckpt
