// ShardMap on meshes far larger than the tensor: the functions that avoid
// per-device work (non-empty shards, NextDeviceOfShard, ShardsHeldBy,
// WriterAssigner) checked against brute force on small meshes, then run on
// 2^24 devices in bounded memory.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/layout/shard_map.h"
#include "tests/layout/random_layouts.h"
#include "tests/peak_rss.h"

namespace meshckpt {
namespace {

using ::meshckpt::testing_util::RandomCase;
using ::meshckpt::testing_util::RandomInt;
using ::meshckpt::testing_util::RandomShardingCase;

constexpr int kCases = 300;

TEST(ShardMapScale, NonEmptyShardsAreExactlyTheNonEmptyOnes) {
  std::mt19937 rng(11);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    std::vector<int64_t> want;
    for (int64_t s = 0; s < map.num_shards(); ++s) {
      if (!map.ShardBox(s).empty()) want.push_back(s);
    }
    std::vector<int64_t> got;
    map.ForEachNonEmptyShard([&](int64_t s) { got.push_back(s); });
    EXPECT_EQ(got, want);
    EXPECT_EQ(map.num_nonempty_shards(), static_cast<int64_t>(want.size()));
  }
}

TEST(ShardMapScale, NextDeviceOfShardMatchesBruteForce) {
  std::mt19937 rng(12);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    const int64_t n = rc.mesh().num_devices();
    for (int64_t s = 0; s < map.num_shards(); ++s) {
      const std::vector<int64_t> holders = map.DevicesOfShard(s);
      for (int64_t from = -1; from <= n; ++from) {
        auto it = std::lower_bound(holders.begin(), holders.end(), from);
        const int64_t want = it == holders.end() ? -1 : *it;
        ASSERT_EQ(map.NextDeviceOfShard(s, from), want)
            << "shard " << s << " from " << from;
      }
    }
  }
}

TEST(ShardMapScale, ShardsHeldByMatchesBruteForce) {
  std::mt19937 rng(13);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase rc = RandomShardingCase(rng);
    SCOPED_TRACE(rc.Describe());
    ShardMap map = ShardMap::Create(rc.layout, rc.shape).value();
    const int64_t n = rc.mesh().num_devices();
    for (int i = 0; i < 10; ++i) {
      const int64_t begin = RandomInt(rng, 0, n);
      const DeviceRange range{begin, RandomInt(rng, begin, n)};
      std::set<int64_t> want;
      for (int64_t d = range.begin; d < range.end; ++d) {
        if (!map.DeviceBox(d).empty()) want.insert(map.ShardOfDevice(d));
      }
      EXPECT_EQ(map.ShardsHeldBy(range), std::vector<int64_t>(want.begin(), want.end()))
          << "devices " << DeviceRangeText(range);
    }
    const std::vector<int64_t> local = map.LocalShards();
    EXPECT_EQ(local, map.ShardsHeldBy(rc.mesh().local_device_range()));
  }
}

// 2^24 devices, tiny tensors: everything costs the 8 shards that exist.
TEST(ShardMapScale, SixteenMillionDevicesCostTheShards) {
  PeakRssGrowth growth;
  for (int num_ranks : {1, 2}) {
    SCOPED_TRACE(num_ranks);
    const Mesh mesh = Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, num_ranks).value();
    ShardMap split = ShardMap::Create(Layout::Create({"x"}, mesh).value(), {8}).value();
    EXPECT_EQ(split.num_shards(), Mesh::kMaxDevices);
    EXPECT_EQ(split.num_nonempty_shards(), 8);
    EXPECT_EQ(split.LocalShards(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
    if (num_ranks == 2) {  // Devices 0-7 are all on rank 0.
      EXPECT_TRUE(split.ShardsHeldBy(mesh.DeviceRangeOfRank(1)).empty());
    }
    EXPECT_EQ(split.NextDeviceOfShard(7, 0), 7);
    EXPECT_EQ(split.NextDeviceOfShard(7, 8), -1);

    ShardMap replicated = ShardMap::Create(Layout::Replicated(mesh, 1), {5}).value();
    EXPECT_EQ(replicated.LocalShards(), (std::vector<int64_t>{0}));
    EXPECT_EQ(replicated.NextDeviceOfShard(0, Mesh::kMaxDevices - 1),
              Mesh::kMaxDevices - 1);

    WriterAssigner assigner(num_ranks);
    const std::vector<ShardWriter> w = assigner.Assign(split, 4);
    ASSERT_EQ(w.size(), 8u);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(w[i].shard, i);
      EXPECT_EQ(w[i].device, i);
      EXPECT_EQ(w[i].rank, 0);
      EXPECT_EQ(w[i].box, Box::Unchecked({i}, {1}));
    }
    // Replicated tensors still balance over the ranks.
    const std::vector<ShardWriter> r = assigner.Assign(replicated, 8);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].rank, num_ranks - 1);
    EXPECT_EQ(r[0].device, mesh.DeviceRangeOfRank(num_ranks - 1).begin);
  }
  // Two dimensions: the shard of column block 3 on y, replicated over x.
  const Mesh grid = Mesh::Create({{"x", 4096}, {"y", 4096}}, 1, 2).value();
  ShardMap cols =
      ShardMap::Create(Layout::Create({"unsharded", "y"}, grid).value(), {2, 6}).value();
  EXPECT_EQ(cols.num_nonempty_shards(), 6);
  EXPECT_EQ(cols.LocalShards(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(cols.NextDeviceOfShard(3, 5), 4096 + 3);
  EXPECT_EQ(cols.NextDeviceOfShard(3, grid.local_device_range().begin),
            grid.local_device_range().begin + 3);
  EXPECT_LT(growth.MiB(), 4.0);
}

}  // namespace
}  // namespace meshckpt
