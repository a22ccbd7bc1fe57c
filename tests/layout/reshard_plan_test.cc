// Tests of PlanReshard.
#include "meshckpt/layout/reshard_plan.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/layout/random_layouts.h"

namespace meshckpt {
namespace {

using ::meshckpt::testing_util::ForEachIndex;
using ::meshckpt::testing_util::LinearIndex;
using ::meshckpt::testing_util::RandomCase;
using ::meshckpt::testing_util::RandomInt;
using ::meshckpt::testing_util::RandomLayout;
using ::meshckpt::testing_util::RandomMesh;
using ::meshckpt::testing_util::RandomShardingCase;
using ::testing::HasSubstr;

constexpr int kCases = 300;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

Box B(std::vector<int64_t> origin, std::vector<int64_t> shape) {
  return Box::Create(std::move(origin), std::move(shape)).value();
}

void ExpectDataLoss(const Box& global, const std::vector<Box>& chunks,
                    const std::string& token) {
  absl::Status s = ValidateChunkCover(global, chunks);
  ASSERT_FALSE(s.ok()) << "global " << global;
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(Msg(s), HasSubstr(token));
}

TEST(PlanReshard, HeaderExample) {
  const std::vector<Box> chunks = {B({0}, {5}), B({5}, {5})};
  ASSERT_TRUE(ValidateChunkCover(Box::FromShape({10}), chunks).ok());
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({3}, {5}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].chunk, 0);
  EXPECT_EQ((*plan)[0].in_chunk, B({3}, {2}));
  EXPECT_EQ((*plan)[0].in_target, B({0}, {2}));
  EXPECT_EQ((*plan)[1].chunk, 1);
  EXPECT_EQ((*plan)[1].in_chunk, B({0}, {3}));
  EXPECT_EQ((*plan)[1].in_target, B({2}, {3}));
}

TEST(PlanReshard, TwoDimensions) {
  // Row-split chunks, column-split target.
  const std::vector<Box> chunks = {B({0, 0}, {2, 6}), B({2, 0}, {2, 6})};
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({0, 3}, {4, 3}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].in_chunk, B({0, 3}, {2, 3}));
  EXPECT_EQ((*plan)[0].in_target, B({0, 0}, {2, 3}));
  EXPECT_EQ((*plan)[1].in_chunk, B({0, 3}, {2, 3}));
  EXPECT_EQ((*plan)[1].in_target, B({2, 0}, {2, 3}));
}

TEST(PlanReshard, SkipsEmptyIntersectionsAndEmptyChunks) {
  const std::vector<Box> chunks = {B({0}, {4}), B({4}, {0}), B({4}, {4}), B({8}, {2})};
  ASSERT_TRUE(ValidateChunkCover(Box::FromShape({10}), chunks).ok());
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({5}, {2}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].chunk, 2);
  EXPECT_EQ((*plan)[0].in_chunk, B({1}, {2}));
  EXPECT_EQ((*plan)[0].in_target, B({0}, {2}));
}

TEST(PlanReshard, EmptyTargetNeedsNothing) {
  const std::vector<Box> chunks = {B({0}, {10})};
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({10}, {0}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->empty());
}

TEST(PlanReshard, Scalar) {
  const std::vector<Box> chunks = {Box()};
  ASSERT_TRUE(ValidateChunkCover(Box(), chunks).ok());
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, Box());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].chunk, 0);
  EXPECT_EQ((*plan)[0].in_chunk, Box());
  EXPECT_EQ((*plan)[0].in_target, Box());
}

TEST(PlanReshard, TargetOutsideCoveredArea) {
  // Chunks cover only [0, 6).
  const std::vector<Box> chunks = {B({0}, {3}), B({3}, {3})};
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({4}, {4}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(plan.status()), HasSubstr("[4, 8)"));

  absl::StatusOr<std::vector<ReshardPiece>> none = PlanReshard({}, B({0}, {1}));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<std::vector<ReshardPiece>> far = PlanReshard(chunks, B({100}, {1}));
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PlanReshard, RankMismatch) {
  const std::vector<Box> chunks = {B({0, 0}, {2, 2})};
  absl::StatusOr<std::vector<ReshardPiece>> plan = PlanReshard(chunks, B({0}, {2}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(plan.status()), HasSubstr("rank"));
}

TEST(ValidateChunkCover, AcceptsPartitions) {
  EXPECT_TRUE(
      ValidateChunkCover(Box::FromShape({4, 4}), {B({0, 0}, {4, 2}), B({0, 2}, {4, 2})})
          .ok());
  EXPECT_TRUE(ValidateChunkCover(Box::FromShape({4, 4}), {B({0, 0}, {4, 4})}).ok());
  // Empty tensor: no chunks, or only empty ones.
  EXPECT_TRUE(ValidateChunkCover(Box::FromShape({0, 4}), {}).ok());
  EXPECT_TRUE(ValidateChunkCover(Box::FromShape({0, 4}), {B({0, 0}, {0, 4})}).ok());
  // Empty chunks may sit anywhere inside, even on top of others.
  EXPECT_TRUE(
      ValidateChunkCover(Box::FromShape({4}), {B({0}, {4}), B({2}, {0}), B({4}, {0})})
          .ok());
}

// A grid of 64 x 64 chunks (what a save over 4096 ranks writes) is accepted
// without comparing every pair; one cell missing, doubled or moved is not.
TEST(ValidateChunkCover, LargeGrids) {
  std::vector<Box> grid;
  for (int64_t i = 0; i < 64; ++i) {
    for (int64_t j = 0; j < 64; ++j) grid.push_back(B({3 * i, 2 * j}, {3, 2}));
  }
  const Box global = Box::FromShape({192, 128});
  EXPECT_TRUE(ValidateChunkCover(global, grid).ok());
  std::vector<Box> bad = grid;
  bad.pop_back();
  ExpectDataLoss(global, bad, "of the 24576");
  bad = grid;
  bad.back() = bad.front();
  ExpectDataLoss(global, bad, "overlap");
  bad = grid;
  bad[70] = B({3, 13}, {3, 2});  // Off the grid along dim 1: overlaps [12, 14).
  ExpectDataLoss(global, bad, "overlap");
  // Uneven cuts still form a grid.
  EXPECT_TRUE(ValidateChunkCover(Box::FromShape({5, 3}),
                                 {B({0, 0}, {4, 1}), B({0, 1}, {4, 2}), B({4, 0}, {1, 1}),
                                  B({4, 1}, {1, 2}), B({2, 2}, {0, 0})})
                  .ok());
}

// ReaderAssigner: every rank computes the same readers; a shard several
// ranks hold is read by the least-loaded of them.
TEST(ReaderAssigner, HoldersAndBalance) {
  // data=2 x model=2 on 4 ranks: model shard m is held by ranks m and 2+m.
  const Mesh mesh = *Mesh::Create({{"data", 2}, {"model", 2}}, 0, 4);
  const ShardMap split = *ShardMap::Create(*Layout::Create({"model"}, mesh), {8});
  const ShardMap rep = *ShardMap::Create(*Layout::Create({"unsharded"}, mesh), {8});
  ReaderAssigner a(4);
  std::vector<ShardRead> r = a.Assign(split, 4);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].holders, (std::vector<int>{0, 2}));
  EXPECT_EQ(r[1].holders, (std::vector<int>{1, 3}));
  EXPECT_EQ(r[0].reader, 0);
  EXPECT_EQ(r[1].reader, 1);
  EXPECT_EQ(r[0].box, B({0}, {4}));
  // The replicated tensor goes to a rank that has read nothing yet.
  r = a.Assign(rep, 4);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].holders, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(r[0].reader, 2);
  r = a.Assign(split, 4);
  EXPECT_EQ(r[0].reader, 0);  // Rank 0 read 16 bytes, rank 2 32.
  EXPECT_EQ(r[1].reader, 3);  // Rank 3 has read nothing.
  EXPECT_EQ(a.bytes_per_rank(), (std::vector<int64_t>{32, 16, 32, 16}));
}

// 128 holders per shard (the holder lists are kept per layout): equal
// replicated tensors are spread one per rank, whichever rank computes it.
TEST(ReaderAssigner, ManyHoldersSpreadEvenly) {
  for (int viewer : {0, 77}) {
    const Mesh mesh = *Mesh::Create({{"x", 128}}, viewer, 128);
    const ShardMap rep = *ShardMap::Create(*Layout::Create({"unsharded"}, mesh), {10});
    ReaderAssigner a(128);
    std::vector<int> readers;
    for (int t = 0; t < 256; ++t) {
      std::vector<ShardRead> r = a.Assign(rep, 4);
      ASSERT_EQ(r.size(), 1u);
      ASSERT_EQ(r[0].holders.size(), 128u);
      readers.push_back(r[0].reader);
    }
    for (int t = 0; t < 256; ++t) EXPECT_EQ(readers[t], t % 128) << t;
    EXPECT_EQ(a.bytes_per_rank(), std::vector<int64_t>(128, 80));
  }
}

TEST(ValidateChunkCover, ChunkOutside) {
  ExpectDataLoss(Box::FromShape({4, 4}), {B({0, 0}, {4, 4}), B({2, 3}, {1, 2})},
                 "outside");
  ExpectDataLoss(Box::FromShape({4, 4}), {B({0, 0}, {4, 5})}, "{[0, 4), [0, 5)}");
  ExpectDataLoss(Box::FromShape({4}), {B({0}, {4}), B({9}, {0})}, "chunk 1");
}

TEST(ValidateChunkCover, Overlap) {
  ExpectDataLoss(Box::FromShape({10}), {B({0}, {6}), B({5}, {5})}, "overlap");
  ExpectDataLoss(Box::FromShape({4, 4}),
                 {B({0, 0}, {2, 4}), B({2, 0}, {2, 4}), B({1, 1}, {2, 2})}, "overlap");
  ExpectDataLoss(Box::FromShape({4}), {B({0}, {4}), B({0}, {4})}, "chunks 0");
  ExpectDataLoss(Box(), {Box(), Box()}, "overlap");
}

TEST(ValidateChunkCover, Gap) {
  ExpectDataLoss(Box::FromShape({10}), {B({0}, {4}), B({5}, {5})}, "9 of the 10");
  ExpectDataLoss(Box::FromShape({4, 4}), {B({0, 0}, {4, 2})}, "8 of the 16");
  ExpectDataLoss(Box::FromShape({3}), {}, "0 of the 3");
  ExpectDataLoss(Box(), {}, "0 of the 1");
}

TEST(ValidateChunkCover, RankMismatch) {
  ExpectDataLoss(Box::FromShape({4, 4}), {B({0}, {4})}, "rank 1");
  ExpectDataLoss(Box::FromShape({4}), {B({0}, {4}), B({0, 0}, {1, 1})}, "rank 2");
  ExpectDataLoss(Box::FromShape({4}), {Box()}, "rank 0");
}

// ---------------------------------------------------------------------------
// Property: saved with one random mesh/layout, read with another.

struct Plan {
  RandomCase saved;
  Layout target;
  std::vector<Box> chunks;
  std::string Describe() const {
    return saved.Describe() + " target=" + target.ToString() +
           " (ranks=" + std::to_string(target.mesh().num_ranks()) + ")";
  }
};

Plan RandomPlan(std::mt19937& rng) {
  RandomCase saved = RandomShardingCase(rng);
  Layout target = RandomLayout(rng, RandomMesh(rng), saved.layout.rank());
  ShardMap map = ShardMap::Create(saved.layout, saved.shape).value();
  WriterAssigner assigner(saved.mesh().num_ranks());
  std::vector<Box> chunks;
  for (const ShardWriter& w : assigner.Assign(map, 4)) chunks.push_back(w.box);
  return Plan{std::move(saved), std::move(target), std::move(chunks)};
}

// Checks one plan for `target` against `chunks`: every element of the target
// exactly once, pieces inside their chunk and target, global coordinates
// agree.
void CheckPlan(const std::vector<Box>& chunks, const Box& target,
               const std::vector<ReshardPiece>& pieces) {
  std::vector<int> count(target.num_elements(), 0);
  int64_t prev = -1;
  for (const ReshardPiece& p : pieces) {
    ASSERT_GE(p.chunk, 0);
    ASSERT_LT(p.chunk, static_cast<int64_t>(chunks.size()));
    EXPECT_GT(p.chunk, prev) << "pieces in chunk order, one per chunk";
    prev = p.chunk;
    const Box& chunk = chunks[p.chunk];
    ASSERT_EQ(p.in_chunk.rank(), target.rank());
    ASSERT_EQ(p.in_target.rank(), target.rank());
    EXPECT_FALSE(p.in_chunk.empty()) << "empty piece from chunk " << p.chunk;
    EXPECT_TRUE(Box::FromShape(chunk.shape()).Contains(p.in_chunk))
        << "in_chunk " << p.in_chunk << " outside chunk " << chunk;
    EXPECT_TRUE(Box::FromShape(target.shape()).Contains(p.in_target))
        << "in_target " << p.in_target << " outside target " << target;
    EXPECT_EQ(p.in_chunk.shape(), p.in_target.shape());
    for (int d = 0; d < target.rank(); ++d) {
      EXPECT_EQ(chunk.origin()[d] + p.in_chunk.origin()[d],
                target.origin()[d] + p.in_target.origin()[d])
          << "dim " << d << " chunk " << chunk << " piece " << p.in_chunk << " target "
          << target << " piece " << p.in_target;
    }
    ForEachIndex(p.in_target, [&](const std::vector<int64_t>& idx) {
      ++count[LinearIndex(target.shape(), idx)];
    });
  }
  for (size_t i = 0; i < count.size(); ++i) {
    ASSERT_EQ(count[i], 1) << "target element " << i << " of " << target;
  }
}

TEST(PlanReshardProperty, PiecesCoverEveryTargetElementOnce) {
  std::mt19937 rng(11);
  for (int c = 0; c < kCases; ++c) {
    const Plan plan = RandomPlan(rng);
    SCOPED_TRACE(plan.Describe());
    const Box global = Box::FromShape(plan.saved.shape);
    ASSERT_TRUE(ValidateChunkCover(global, plan.chunks).ok())
        << ValidateChunkCover(global, plan.chunks);
    ShardMap target_map = ShardMap::Create(plan.target, plan.saved.shape).value();
    for (int64_t dev = 0; dev < plan.target.mesh().num_devices(); ++dev) {
      const Box target = target_map.DeviceBox(dev);
      SCOPED_TRACE("target device " + std::to_string(dev) + " box " + target.ToString());
      absl::StatusOr<std::vector<ReshardPiece>> pieces = PlanReshard(plan.chunks, target);
      ASSERT_TRUE(pieces.ok()) << pieces.status();
      CheckPlan(plan.chunks, target, *pieces);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// The same with every shard box as a chunk (empty ones included), in a
// shuffled order, and with random sub-boxes of the tensor as targets.
TEST(PlanReshardProperty, ShuffledChunksAndArbitraryTargets) {
  std::mt19937 rng(12);
  for (int c = 0; c < kCases; ++c) {
    const RandomCase saved = RandomShardingCase(rng);
    SCOPED_TRACE(saved.Describe());
    ShardMap map = ShardMap::Create(saved.layout, saved.shape).value();
    std::vector<Box> chunks;
    for (int64_t s = 0; s < map.num_shards(); ++s) chunks.push_back(map.ShardBox(s));
    std::shuffle(chunks.begin(), chunks.end(), rng);
    const Box global = map.global_box();
    ASSERT_TRUE(ValidateChunkCover(global, chunks).ok())
        << ValidateChunkCover(global, chunks);
    for (int t = 0; t < 5; ++t) {
      std::vector<int64_t> origin(global.rank()), shape(global.rank());
      for (int d = 0; d < global.rank(); ++d) {
        const int64_t n = global.shape()[d];
        origin[d] = RandomInt(rng, 0, n);
        shape[d] = RandomInt(rng, 0, n - origin[d]);
      }
      const Box target = Box::Create(origin, shape).value();
      SCOPED_TRACE("target " + target.ToString());
      absl::StatusOr<std::vector<ReshardPiece>> pieces = PlanReshard(chunks, target);
      ASSERT_TRUE(pieces.ok()) << pieces.status();
      CheckPlan(chunks, target, *pieces);
      if (::testing::Test::HasFatalFailure()) return;

      // A target that pokes out of the tensor by one is refused, unless it
      // has no elements.
      if (global.rank() > 0) {
        const int d = static_cast<int>(RandomInt(rng, 0, global.rank() - 1));
        std::vector<int64_t> grown = shape;
        grown[d] = global.shape()[d] - origin[d] + 1;
        const Box outside = Box::Create(origin, grown).value();
        absl::StatusOr<std::vector<ReshardPiece>> bad = PlanReshard(chunks, outside);
        if (outside.empty()) {
          EXPECT_TRUE(bad.ok()) << outside << ": " << bad.status();
        } else {
          ASSERT_FALSE(bad.ok()) << outside;
          EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
        }
      }
    }
  }
}

// Dropping any non-empty chunk of a valid cover is detected.
TEST(ValidateChunkCoverProperty, MissingOrDuplicatedChunkIsDataLoss) {
  std::mt19937 rng(13);
  for (int c = 0; c < kCases; ++c) {
    const Plan plan = RandomPlan(rng);
    SCOPED_TRACE(plan.Describe());
    if (plan.chunks.empty()) continue;
    const Box global = Box::FromShape(plan.saved.shape);
    const size_t i = static_cast<size_t>(
        RandomInt(rng, 0, static_cast<int64_t>(plan.chunks.size()) - 1));
    std::vector<Box> missing = plan.chunks;
    missing.erase(missing.begin() + i);
    absl::Status s = ValidateChunkCover(global, missing);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    std::vector<Box> twice = plan.chunks;
    twice.push_back(plan.chunks[i]);
    s = ValidateChunkCover(global, twice);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(Msg(s), HasSubstr("overlap"));
  }
}

}  // namespace
}  // namespace meshckpt
