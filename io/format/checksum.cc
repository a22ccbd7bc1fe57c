// XXH3 checksums over the tiles of a chunk.
#include "meshckpt/io/format/checksum.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(_M_X64)
// Picks the widest SIMD the CPU has at run time (the library's default
// build is SSE2): 27 vs 9-11 GB/s here, same hash values. Hashing is on the
// critical path of every save and restore.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <utility>

#include "meshckpt/layout/region.h"

namespace meshckpt {

std::vector<int64_t> ChooseTileShape(absl::Span<const int64_t> chunk_shape,
                                     int64_t element_size, int64_t target_bytes) {
  std::vector<int64_t> tile(chunk_shape.begin(), chunk_shape.end());
  for (int64_t& t : tile) t = std::max<int64_t>(t, 1);
  const int64_t target = std::max<int64_t>(target_bytes / element_size, 1);
  auto elements = [&] {
    int64_t n = 1;
    for (int64_t t : tile) n *= t;
    return n;
  };
  while (!tile.empty() && elements() > target) {
    size_t largest = 0;
    for (size_t d = 1; d < tile.size(); ++d) {
      if (tile[d] > tile[largest]) largest = d;
    }
    if (tile[largest] == 1) break;
    tile[largest] = (tile[largest] + 1) / 2;
  }
  return tile;
}

TileGrid::TileGrid(std::vector<int64_t> chunk_shape, std::vector<int64_t> tile_shape)
    : chunk_shape_(std::move(chunk_shape)), tile_shape_(std::move(tile_shape)) {
  for (size_t d = 0; d < chunk_shape_.size(); ++d) {
    grid_.push_back((chunk_shape_[d] + tile_shape_[d] - 1) / tile_shape_[d]);
  }
}

int64_t TileGrid::num_tiles() const {
  int64_t n = 1;
  for (int64_t g : grid_) n *= g;
  return n;
}

Box TileGrid::TileBox(int64_t t) const {
  const size_t rank = grid_.size();
  std::vector<int64_t> origin(rank), shape(rank);
  for (size_t i = rank; i-- > 0;) {
    const int64_t c = t % grid_[i];
    t /= grid_[i];
    origin[i] = c * tile_shape_[i];
    shape[i] = std::min(tile_shape_[i], chunk_shape_[i] - origin[i]);
  }
  return Box::Unchecked(std::move(origin), std::move(shape));
}

Box TileGrid::Expand(const Box& region) const {
  const size_t rank = grid_.size();
  std::vector<int64_t> origin(rank), shape(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t lo = region.origin()[i] / tile_shape_[i] * tile_shape_[i];
    const int64_t end = region.origin()[i] + region.shape()[i];
    const int64_t hi = std::min(
        chunk_shape_[i], (end + tile_shape_[i] - 1) / tile_shape_[i] * tile_shape_[i]);
    origin[i] = lo;
    shape[i] = hi - lo;
  }
  return Box::Unchecked(std::move(origin), std::move(shape));
}

std::vector<int64_t> TileGrid::TilesIn(const Box& aligned) const {
  const size_t rank = grid_.size();
  std::vector<int64_t> lo(rank), hi(rank);
  for (size_t i = 0; i < rank; ++i) {
    lo[i] = aligned.origin()[i] / tile_shape_[i];
    hi[i] =
        (aligned.origin()[i] + aligned.shape()[i] + tile_shape_[i] - 1) / tile_shape_[i];
    if (hi[i] <= lo[i]) return {};
  }
  std::vector<int64_t> tiles;
  std::vector<int64_t> idx = lo;
  while (true) {
    int64_t t = 0;
    for (size_t i = 0; i < rank; ++i) t = t * grid_[i] + idx[i];
    tiles.push_back(t);
    size_t i = rank;
    for (; i-- > 0;) {
      if (++idx[i] < hi[i]) break;
      idx[i] = lo[i];
    }
    if (i == static_cast<size_t>(-1)) break;
  }
  return tiles;
}

uint64_t HashRegion(const void* buffer, absl::Span<const int64_t> buffer_shape,
                    const Box& region, int64_t element_size) {
  const char* base = static_cast<const char*>(buffer);
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  // Walk the region against itself: only the source offsets matter.
  ForEachRunPair(buffer_shape, region, buffer_shape, region,
                 [&](int64_t off, int64_t, int64_t n) {
                   XXH3_64bits_update(state, base + off * element_size, n * element_size);
                 });
  const uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

std::vector<uint64_t> TileChecksums(const void* chunk_data, const TileGrid& grid,
                                    int64_t element_size) {
  std::vector<uint64_t> sums(grid.num_tiles());
  if (grid.num_tiles() == 1) {  // The whole chunk: one contiguous hash.
    int64_t n = element_size;
    for (int64_t s : grid.chunk_shape()) n *= s;
    sums[0] = XXH3_64bits(chunk_data, n);
    return sums;
  }
  for (int64_t t = 0; t < grid.num_tiles(); ++t) {
    sums[t] = HashRegion(chunk_data, grid.chunk_shape(), grid.TileBox(t), element_size);
  }
  return sums;
}

TileHasher::TileHasher(const TileGrid& grid, const void* chunk_data, int64_t element_size,
                       uint64_t* sums)
    : TileHasher(grid, Box::FromShape(grid.chunk_shape()), chunk_data, grid.chunk_shape(),
                 Box::FromShape(grid.chunk_shape()), element_size, sums) {}

TileHasher::TileHasher(const TileGrid& grid, const Box& region, const void* buffer,
                       absl::Span<const int64_t> buffer_shape, const Box& buffer_region,
                       int64_t element_size, uint64_t* sums)
    : grid_(grid),
      region_(region),
      view_{static_cast<const char*>(buffer),
            {buffer_shape.begin(), buffer_shape.end()},
            {}},
      element_size_(element_size),
      sums_(sums) {
  for (int d = 0; d < region.rank(); ++d) {
    view_.shift.push_back(buffer_region.origin()[d] - region.origin()[d]);
  }
  if (region.empty()) return;
  // The tiles of the region's first tile row, then the same columns below.
  Box first = region;
  if (region.rank() > 0) {
    std::vector<int64_t> shape = region.shape();
    shape[0] = 1;
    first = Box::Unchecked(region.origin(), std::move(shape));
  }
  row_tiles_ = grid.TilesIn(grid.Expand(first));
  for (size_t j = 0; j < row_tiles_.size(); ++j) states_.push_back(XXH3_createState());
}

TileHasher::~TileHasher() {
  for (void* s : states_) XXH3_freeState(static_cast<XXH3_state_t*>(s));
}

void TileHasher::AddRows(int64_t begin, int64_t end) { Add(begin, end, view_); }

void TileHasher::AddRows(int64_t begin, int64_t end, const void* buffer,
                         absl::Span<const int64_t> buffer_shape, const Box& at) {
  View view{
      static_cast<const char*>(buffer), {buffer_shape.begin(), buffer_shape.end()}, {}};
  for (int d = 0; d < region_.rank(); ++d) {
    view.shift.push_back(at.origin()[d] - (d == 0 ? begin : region_.origin()[d]));
  }
  Add(begin, end, view);
}

void TileHasher::Add(int64_t begin, int64_t end, const View& view) {
  const int rank = region_.rank();
  if (row_tiles_.empty()) return;
  if (rank == 0) {  // One element, one tile.
    sums_[0] = XXH3_64bits(view.buffer, element_size_);
    return;
  }
  const int64_t tile_rows = grid_.tile_shape()[0];
  const int64_t chunk_rows = grid_.chunk_shape()[0];
  const int64_t tiles_per_row =
      grid_.num_tiles() / ((chunk_rows + tile_rows - 1) / tile_rows);
  while (begin < end) {
    const int64_t tile_row = begin / tile_rows;
    const int64_t row_end = std::min(chunk_rows, (tile_row + 1) * tile_rows);
    const int64_t stop = std::min(end, row_end);
    for (size_t j = 0; j < row_tiles_.size(); ++j) {
      auto* state = static_cast<XXH3_state_t*>(states_[j]);
      if (begin == tile_row * tile_rows) XXH3_64bits_reset(state);
      const int64_t t =
          row_tiles_[j] + (tile_row - row_tiles_[0] / tiles_per_row) * tiles_per_row;
      const Box tile = grid_.TileBox(t);
      std::vector<int64_t> origin = tile.origin(), extent = tile.shape();
      origin[0] = begin;
      extent[0] = stop - begin;
      for (int d = 0; d < rank; ++d) origin[d] += view.shift[d];
      const Box part = Box::Unchecked(std::move(origin), std::move(extent));
      ForEachRunPair(view.shape, part, view.shape, part,
                     [&](int64_t off, int64_t, int64_t n) {
                       XXH3_64bits_update(state, view.buffer + off * element_size_,
                                          n * element_size_);
                     });
      if (stop == row_end) sums_[t] = XXH3_64bits_digest(state);
    }
    begin = stop;
  }
}

uint64_t HashStrings(const std::string* data, int64_t n) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t len = data[i].size();
    unsigned char le[8];
    for (int b = 0; b < 8; ++b) le[b] = static_cast<unsigned char>(len >> (8 * b));
    XXH3_64bits_update(state, le, 8);
    XXH3_64bits_update(state, data[i].data(), data[i].size());
  }
  const uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

}  // namespace meshckpt
