// Tile checksums: how a chunk's bytes are protected.
//
// A saved chunk (one distinct shard) is cut into a grid of tiles. Each tile's
// elements, taken in row-major order, are hashed with XXH3-64 (seed 0). A
// restore that wants a region R of the chunk reads the smallest tile-aligned
// box containing R, verifies every tile in it, and copies R out: it checks
// everything it returns and reads at most one tile's extent more than R along
// each dimension.
//
// Tile shape: start from the chunk shape and halve (rounding up) the largest
// dimension until a tile holds at most the target bytes; small dimensions
// stay whole, so small chunks are one tile and large ones get near-cubic
// tiles. String chunks are always one tile, hashed over their serialization
// (each element as its 8-byte little-endian length, then its bytes).
//
// Thread-safe (pure functions).
#ifndef MESHCKPT_IO_FORMAT_CHECKSUM_H_
#define MESHCKPT_IO_FORMAT_CHECKSUM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

std::vector<int64_t> ChooseTileShape(absl::Span<const int64_t> chunk_shape,
                                     int64_t element_size, int64_t target_bytes);

class TileGrid {
 public:
  // Both in chunk coordinates; tile sizes >= 1.
  TileGrid(std::vector<int64_t> chunk_shape, std::vector<int64_t> tile_shape);

  const std::vector<int64_t>& chunk_shape() const { return chunk_shape_; }
  const std::vector<int64_t>& tile_shape() const { return tile_shape_; }
  int64_t num_tiles() const;
  // Tile `t` (row-major over the grid), clipped to the chunk.
  Box TileBox(int64_t t) const;
  // The smallest union of whole tiles containing `region` (chunk coords).
  Box Expand(const Box& region) const;
  // Tiles inside a tile-aligned region, in row-major order.
  std::vector<int64_t> TilesIn(const Box& aligned) const;

 private:
  std::vector<int64_t> chunk_shape_;
  std::vector<int64_t> tile_shape_;
  std::vector<int64_t> grid_;  // Tiles per dimension.
};

// XXH3-64 of the elements of `region` of a row-major buffer of `buffer_shape`.
uint64_t HashRegion(const void* buffer, absl::Span<const int64_t> buffer_shape,
                    const Box& region, int64_t element_size);
// Checksums of every tile of a chunk held contiguously in `chunk_data`.
std::vector<uint64_t> TileChecksums(const void* chunk_data, const TileGrid& grid,
                                    int64_t element_size);
uint64_t HashStrings(const std::string* data, int64_t n);

// Tile checksums computed over consecutive ranges of rows (dimension 0),
// so that a writer can hash a few hundred KiB and write them while they are
// still in cache, and a reader can check what it just read. The hasher
// covers the tiles of `region`, a tile-aligned box of the chunk (chunk
// coordinates), whose elements sit at `buffer_region` of a row-major buffer
// of shape `buffer_shape`. Rows of the region must be added in order and all
// of them; sums[tile] is stored when the tile's last row has been added.
// Rank-0 chunks have one row. Values equal TileChecksums'.
class TileHasher {
 public:
  // The whole chunk, row-major in `chunk_data` (what a save hashes).
  TileHasher(const TileGrid& grid, const void* chunk_data, int64_t element_size,
             uint64_t* sums);
  TileHasher(const TileGrid& grid, const Box& region, const void* buffer,
             absl::Span<const int64_t> buffer_shape, const Box& buffer_region,
             int64_t element_size, uint64_t* sums);
  ~TileHasher();
  TileHasher(const TileHasher&) = delete;
  TileHasher& operator=(const TileHasher&) = delete;

  // Rows [begin, end) in chunk coordinates, inside the region.
  void AddRows(int64_t begin, int64_t end);
  // The same, but these rows (of the region) are at `at` of a row-major
  // `buffer` of shape `buffer_shape` (e.g. a staging buffer holding only
  // them); later calls without a buffer use the constructor's again.
  void AddRows(int64_t begin, int64_t end, const void* buffer,
               absl::Span<const int64_t> buffer_shape, const Box& at);

 private:
  struct View {
    const char* buffer;
    std::vector<int64_t> shape;
    std::vector<int64_t> shift;  // buffer coordinate - chunk coordinate.
  };
  void Add(int64_t begin, int64_t end, const View& view);

  const TileGrid& grid_;
  Box region_;
  View view_;
  int64_t element_size_;
  uint64_t* sums_;
  std::vector<int64_t> row_tiles_;  // Tiles of the region in one tile row.
  std::vector<void*> states_;       // Their XXH3 states.
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_CHECKSUM_H_
