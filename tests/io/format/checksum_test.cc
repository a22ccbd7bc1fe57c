// TileHasher must give exactly TileChecksums' values however rows are fed.
#include "meshckpt/io/format/checksum.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {
namespace {

std::vector<uint8_t> Bytes(int64_t n) {
  std::vector<uint8_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + 7);
  return v;
}

TEST(TileHasherTest, MatchesTileChecksumsForAnyRowSteps) {
  const std::vector<std::vector<int64_t>> shapes = {{37, 11}, {64, 64}, {5, 7, 3},
                                                    {1, 100}, {100},    {9, 1, 4}};
  for (const std::vector<int64_t>& shape : shapes) {
    for (int64_t target : {4, 64, 333, 1 << 20}) {
      const int64_t esize = 4;
      int64_t n = esize;
      for (int64_t s : shape) n *= s;
      const std::vector<uint8_t> data = Bytes(n);
      const TileGrid grid(shape, ChooseTileShape(shape, esize, target));
      const std::vector<uint64_t> want = TileChecksums(data.data(), grid, esize);
      for (int64_t step : {1, 2, 3, 7, 1000}) {
        std::vector<uint64_t> got(grid.num_tiles(), 0);
        TileHasher hasher(grid, data.data(), esize, got.data());
        for (int64_t r = 0; r < shape[0]; r += step) {
          hasher.AddRows(r, std::min(shape[0], r + step));
        }
        EXPECT_EQ(got, want) << "shape[0]=" << shape[0] << " target=" << target
                             << " step=" << step;
      }
    }
  }
}

TEST(TileHasherTest, Scalar) {
  const double x = 2.5;
  const TileGrid grid({}, {});
  std::vector<uint64_t> got(1, 0);
  TileHasher hasher(grid, &x, 8, got.data());
  hasher.AddRows(0, 1);
  EXPECT_EQ(got, TileChecksums(&x, grid, 8));
}

// A tile-aligned region of a chunk held inside a larger buffer (what a
// restore verifies in place): the region's tiles get TileChecksums' values.
TEST(TileHasherTest, RegionInsideALargerBuffer) {
  const std::vector<int64_t> chunk = {20, 12};
  const int64_t esize = 2;
  const std::vector<uint8_t> data = Bytes(20 * 12 * esize);
  const TileGrid grid(chunk, {4, 3});
  const std::vector<uint64_t> want = TileChecksums(data.data(), grid, esize);
  const Box region = *Box::Create({4, 3}, {12, 6});  // Tile-aligned.
  // The region copied to (1, 2) of a [15, 9] buffer.
  const std::vector<int64_t> buffer_shape = {15, 9};
  std::vector<uint8_t> buffer(15 * 9 * esize, 0);
  const Box at = *Box::Create({1, 2}, {12, 6});
  CopyRegion(data.data(), chunk, region, buffer.data(), buffer_shape, at, esize);
  for (int64_t step : {1, 3, 5, 12}) {
    std::vector<uint64_t> got(grid.num_tiles(), 0);
    TileHasher hasher(grid, region, buffer.data(), buffer_shape, at, esize, got.data());
    for (int64_t r = 4; r < 16; r += step)
      hasher.AddRows(r, std::min<int64_t>(16, r + step));
    for (int64_t t : grid.TilesIn(region)) EXPECT_EQ(got[t], want[t]) << "tile " << t;
    for (int64_t t = 0; t < grid.num_tiles(); ++t) {
      if (!Intersect(grid.TileBox(t), region).empty()) continue;
      EXPECT_EQ(got[t], 0u) << "tile " << t << " is outside the region";
    }
  }
}

// Rows handed over piece by piece in a staging buffer that holds only them.
TEST(TileHasherTest, RowsFromAStagingBuffer) {
  const std::vector<int64_t> chunk = {20, 12};
  const int64_t esize = 4;
  const std::vector<uint8_t> data = Bytes(20 * 12 * esize);
  const TileGrid grid(chunk, {4, 3});
  const std::vector<uint64_t> want = TileChecksums(data.data(), grid, esize);
  const Box region = *Box::Create({4, 3}, {12, 9});
  std::vector<uint64_t> got(grid.num_tiles(), 0);
  TileHasher hasher(grid, region, nullptr, chunk, region, esize, got.data());
  for (int64_t r = 4; r < 16; r += 5) {
    const int64_t stop = std::min<int64_t>(16, r + 5);
    // Staging holds rows [r, stop) of the region at (1, 2) of a wider buffer.
    const std::vector<int64_t> staging_shape = {stop - r + 1, 12};
    std::vector<uint8_t> staging(staging_shape[0] * 12 * esize, 0);
    const Box rows = *Box::Create({r, 3}, {stop - r, 9});
    const Box at = *Box::Create({1, 2}, {stop - r, 9});
    CopyRegion(data.data(), chunk, rows, staging.data(), staging_shape, at, esize);
    hasher.AddRows(r, stop, staging.data(), staging_shape, at);
  }
  for (int64_t t : grid.TilesIn(region)) EXPECT_EQ(got[t], want[t]) << "tile " << t;
}

}  // namespace
}  // namespace meshckpt
