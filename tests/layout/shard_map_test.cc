// SplitShard, ShardMap and WriterAssigner on hand-picked cases, including
// the extremes of int64. The random property tests are in
// shard_map_property_test.cc.
#include "meshckpt/layout/shard_map.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

IndexInterval I(int64_t origin, int64_t size) {
  return IndexInterval::UncheckedSized(origin, size);
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------
// Split rule

TEST(SplitShard, TenFourWays) {
  EXPECT_EQ(SplitBlockSize(10, 4), 3);
  EXPECT_EQ(SplitShard(10, 4, 0), I(0, 3));
  EXPECT_EQ(SplitShard(10, 4, 1), I(3, 3));
  EXPECT_EQ(SplitShard(10, 4, 2), I(6, 3));
  EXPECT_EQ(SplitShard(10, 4, 3), I(9, 1));
}

TEST(SplitShard, ThreeFourWaysHasAnEmptyShard) {
  EXPECT_EQ(SplitBlockSize(3, 4), 1);
  EXPECT_EQ(SplitShard(3, 4, 0), I(0, 1));
  EXPECT_EQ(SplitShard(3, 4, 1), I(1, 1));
  EXPECT_EQ(SplitShard(3, 4, 2), I(2, 1));
  EXPECT_EQ(SplitShard(3, 4, 3), I(3, 0));
  EXPECT_TRUE(SplitShard(3, 4, 3).empty());
}

TEST(SplitShard, TrailingShardsEmpty) {
  // n=5, k=4: b=2 -> [0,2),[2,4),[4,5),[5,5).
  EXPECT_EQ(SplitShard(5, 4, 2), I(4, 1));
  EXPECT_EQ(SplitShard(5, 4, 3), I(5, 0));
  // n=1, k=3: b=1 -> [0,1),[1,1),[1,1).
  EXPECT_EQ(SplitShard(1, 3, 0), I(0, 1));
  EXPECT_EQ(SplitShard(1, 3, 1), I(1, 0));
  EXPECT_EQ(SplitShard(1, 3, 2), I(1, 0));
}

TEST(SplitShard, ZeroSize) {
  EXPECT_EQ(SplitBlockSize(0, 4), 0);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(SplitShard(0, 4, i), I(0, 0)) << i;
  EXPECT_EQ(SplitShard(0, 1, 0), I(0, 0));
}

TEST(SplitShard, EvenAndUnsplit) {
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(SplitShard(8, 4, i), I(2 * i, 2));
  EXPECT_EQ(SplitShard(7, 1, 0), I(0, 7));
}

TEST(SplitShard, ExhaustiveSmall) {
  for (int64_t n = 0; n <= 40; ++n) {
    for (int64_t k = 1; k <= 12; ++k) {
      int64_t next = 0;
      for (int64_t i = 0; i < k; ++i) {
        IndexInterval s = SplitShard(n, k, i);
        EXPECT_EQ(s.origin(), std::min(i * SplitBlockSize(n, k), n)) << n << "/" << k;
        EXPECT_EQ(s.origin(), next) << "shards are contiguous: n=" << n << " k=" << k;
        EXPECT_GE(s.size(), 0);
        EXPECT_LE(s.size(), SplitBlockSize(n, k));
        next = s.exclusive_max();
      }
      EXPECT_EQ(next, n) << "shards cover [0, n): n=" << n << " k=" << k;
    }
  }
}

// A dimension of any valid size (up to INT64_MAX, which CheckedNumElements
// accepts) must split without overflow.
TEST(SplitShard, HugeDimensionsDoNotOverflow) {
  // Not constexpr: evaluated at run time.
  volatile int64_t n = kMax;
  for (int64_t k : {2, 3, 7, 1000}) {
    int64_t next = 0;
    for (int64_t i = 0; i < k; ++i) {
      const IndexInterval s = SplitShard(n, k, i);
      EXPECT_EQ(s.origin(), next) << "n=INT64_MAX k=" << k << " i=" << i;
      EXPECT_GE(s.size(), 0) << "n=INT64_MAX k=" << k << " i=" << i << " -> "
                             << s.origin() << "+" << s.size();
      next = s.exclusive_max();
    }
    EXPECT_EQ(next, kMax) << "k=" << k;
  }
  // The same through a ShardMap: {INT64_MAX} is a valid shape (one element
  // per index fits in int64), so its last shard must lie inside the tensor.
  Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  absl::StatusOr<ShardMap> map =
      ShardMap::Create(Layout::Create({"x"}, mesh).value(), {kMax});
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->DeviceBox(1),
            Box::Unchecked({int64_t{1} << 62}, {kMax - (int64_t{1} << 62)}));
  EXPECT_TRUE(map->global_box().Contains(map->DeviceBox(1))) << map->DeviceBox(1);
}

// ---------------------------------------------------------------------------
// ShardMap unit cases

TEST(ShardMap, CreateRankMismatch) {
  Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  Layout layout = Layout::Create({"x", "unsharded"}, mesh).value();
  absl::StatusOr<ShardMap> m = ShardMap::Create(layout, {4});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(m.status()), HasSubstr("rank 2"));
  EXPECT_THAT(Msg(m.status()), HasSubstr("rank 1"));
  EXPECT_FALSE(ShardMap::Create(layout, {4, 4, 4}).ok());
}

TEST(ShardMap, CreateBadShape) {
  Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  Layout layout = Layout::Create({"x", "unsharded"}, mesh).value();
  absl::StatusOr<ShardMap> neg = ShardMap::Create(layout, {4, -1});
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<ShardMap> big =
      ShardMap::Create(layout, {int64_t{1} << 40, int64_t{1} << 40});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShardMap, TwoDimExample) {
  Mesh mesh = Mesh::Create({{"x", 2}, {"y", 4}}, 0, 2).value();
  Layout layout = Layout::Create({"x", "y"}, mesh).value();
  ShardMap m = ShardMap::Create(layout, {10, 6}).value();
  EXPECT_EQ(m.global_box(), Box::FromShape({10, 6}));
  EXPECT_EQ(m.global_shape(), (std::vector<int64_t>{10, 6}));
  EXPECT_EQ(m.grid_shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(m.block_shape(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(m.num_shards(), 8);
  // Device 6 = (1, 2): rows [5,10), cols [4,6).
  EXPECT_EQ(m.ShardOfDevice(6), 6);
  EXPECT_EQ(m.DeviceBox(6), Box::Unchecked({5, 4}, {5, 2}));
  // Device 3 = (0, 3): cols [6,6) is empty.
  EXPECT_EQ(m.DeviceBox(3), Box::Unchecked({0, 6}, {5, 0}));
  EXPECT_TRUE(m.DeviceBox(3).empty());
  EXPECT_EQ(m.DevicesOfShard(6), (std::vector<int64_t>{6}));
}

TEST(ShardMap, ReplicationOverUnnamedMeshDims) {
  Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, 0, 2).value();
  Layout layout = Layout::Create({"unsharded", "model"}, mesh).value();
  ShardMap m = ShardMap::Create(layout, {3, 8}).value();
  EXPECT_EQ(m.num_shards(), 4);
  EXPECT_EQ(m.DevicesOfShard(1), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(m.ShardOfDevice(5), 1);
  EXPECT_EQ(m.DeviceBox(5), Box::Unchecked({0, 2}, {3, 2}));

  Layout rows = Layout::Create({"batch", "unsharded"}, mesh).value();
  ShardMap r = ShardMap::Create(rows, {3, 8}).value();
  EXPECT_EQ(r.DevicesOfShard(0), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.DevicesOfShard(1), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(r.ShardBox(1), Box::Unchecked({2, 0}, {1, 8}));
}

TEST(ShardMap, Scalar) {
  Mesh mesh = Mesh::Create({{"x", 4}}, 0, 2).value();
  ShardMap m = ShardMap::Create(Layout::Replicated(mesh, 0), {}).value();
  EXPECT_EQ(m.num_shards(), 1);
  EXPECT_EQ(m.ShardBox(0), Box());
  EXPECT_EQ(m.ShardOfDevice(3), 0);
  EXPECT_EQ(m.DevicesOfShard(0), (std::vector<int64_t>{0, 1, 2, 3}));
  WriterAssigner a(2);
  std::vector<ShardWriter> w = a.Assign(m, 8);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].shard, 0);
  EXPECT_EQ(w[0].device, 0);
  EXPECT_EQ(w[0].rank, 0);
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{8, 0}));
  // The next replicated scalar goes to the other rank, its lowest device.
  w = a.Assign(m, 8);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].device, 2);
  EXPECT_EQ(w[0].rank, 1);
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{8, 8}));
}

TEST(WriterAssigner, EmptyShardsGetNoWriter) {
  Mesh mesh = Mesh::Create({{"x", 4}}, 0, 4).value();
  Layout layout = Layout::Create({"x"}, mesh).value();
  ShardMap m = ShardMap::Create(layout, {3}).value();
  WriterAssigner a(4);
  std::vector<ShardWriter> w = a.Assign(m, 4);
  ASSERT_EQ(w.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(w[i].shard, i);
    EXPECT_EQ(w[i].device, i);
    EXPECT_EQ(w[i].rank, i);
    EXPECT_EQ(w[i].box, Box::Unchecked({i}, {1}));
  }
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{4, 4, 4, 0}));
  ShardMap none = ShardMap::Create(layout, {0}).value();
  EXPECT_TRUE(a.Assign(none, 4).empty());
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{4, 4, 4, 0}));
}

TEST(WriterAssigner, ReplicatedBiasesSpreadOverRanks) {
  Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, 0, 4).value();
  WriterAssigner a(4);
  std::vector<int> ranks;
  for (int i = 0; i < 8; ++i) {
    ShardMap m = ShardMap::Create(Layout::Replicated(mesh, 1), {16}).value();
    std::vector<ShardWriter> w = a.Assign(m, 4);
    ASSERT_EQ(w.size(), 1u);
    ranks.push_back(w[0].rank);
    EXPECT_EQ(w[0].device, 2 * w[0].rank) << "lowest device of the rank";
  }
  EXPECT_EQ(ranks, (std::vector<int>{0, 1, 2, 3, 0, 1, 2, 3}));
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{128, 128, 128, 128}));
}

}  // namespace
}  // namespace meshckpt
