// TensorReader: boxes of a tensor filled from its chunks, verified tile by tile.
#include "meshckpt/checkpoint/engine/tensor_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/layout/region.h"
#include "meshckpt/layout/reshard_plan.h"

namespace meshckpt::internal {
namespace {

// A direct in-place read moves about this many bytes per call, then hashes
// them: the kernel's copy does not leave large reads in cache, so hashing
// 256 KiB pieces costs ~40% less than 1 MiB ones (warm-cache microbenchmark
// in docs/performance.md).
constexpr int64_t kReadPieceBytes = int64_t{256} << 10;

// Shifts `b` by `offset` per dimension.
Box Shift(const Box& b, const std::vector<int64_t>& offset) {
  std::vector<int64_t> origin = b.origin();
  for (size_t d = 0; d < origin.size(); ++d) origin[d] += offset[d];
  return Box::Unchecked(std::move(origin), b.shape());
}

// Rows [begin, end) (dimension 0, same coordinates as `b`) of `b`.
Box Rows(const Box& b, int64_t begin, int64_t end) {
  if (b.rank() == 0) return b;
  std::vector<int64_t> origin = b.origin(), shape = b.shape();
  origin[0] = begin;
  shape[0] = end - begin;
  return Box::Unchecked(std::move(origin), std::move(shape));
}

}  // namespace

absl::Status TensorReader::Fill(const Box& target_box, void* target) {
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<ReshardPiece> pieces,
                            PlanReshard(saved_.chunks, target_box));
  for (const ReshardPiece& p : pieces) {
    MESHCKPT_RETURN_IF_ERROR(saved_.dtype == DType::kString
                                 ? FillStrings(p, target_box, target)
                                 : FillPiece(p, target_box, target));
  }
  return absl::OkStatus();
}

absl::Status TensorReader::Mismatch(const Box& chunk, int64_t tile) const {
  return absl::DataLossError(absl::StrCat(
      "tensor '", saved_.key, "': checksum mismatch in tile ", tile, " of chunk ",
      chunk.ToString(), " in data file '", source_.path(), "'"));
}

absl::Status TensorReader::ReadChunkBox(int c, const Box& box,
                                        absl::Span<const int64_t> dst_shape,
                                        const Box& dst_box, void* dst) {
  PhaseTrace::Scope scope(trace_, "(read)");
  const Box& chunk = saved_.chunks[c];
  bytes_read_ += box.num_elements() * esize_;
  absl::Status s = source_.ReadChunk(dataset_, chunk, saved_.storage[c],
                                     Shift(box, chunk.origin()), dst_shape, dst_box, dst);
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("tensor '", saved_.key, "', chunk ",
                                             chunk.ToString(), ": ", s.message()));
}

absl::Status TensorReader::FillPiece(const ReshardPiece& p, const Box& target_box,
                                     void* target) {
  const Box& chunk = saved_.chunks[p.chunk];
  const ChunkRecord& record = index_.chunk(saved_, p.chunk);
  const TileGrid grid(chunk.shape(), record.tile_shape);
  const Box& region = p.in_chunk;
  const Box expanded = options_.verify_checksums ? grid.Expand(region) : region;
  if (expanded == region) return FillInPlace(p.chunk, grid, p, target_box, target);
  // The region cuts through tiles: read whole tiles, a few hundred KiB of
  // rows at a time, into a staging buffer; hash them and copy out the
  // wanted part while they are in cache; check the sums at the end.
  sums_.assign(grid.num_tiles(), 0);
  TileHasher hasher(grid, expanded, nullptr, chunk.shape(), expanded, esize_,
                    sums_.data());
  const int64_t begin = expanded.origin()[0], end = begin + expanded.shape()[0];
  const int64_t row_bytes = expanded.num_elements() / expanded.shape()[0] * esize_;
  const int64_t step = std::max<int64_t>(1, kReadPieceBytes / row_bytes);
  for (int64_t r = begin; r < end; r += step) {
    const int64_t stop = std::min(end, r + step);
    const Box piece = Rows(expanded, r, stop);
    const Box whole = Box::FromShape(piece.shape());
    buffer_.resize(piece.num_elements() * esize_);
    MESHCKPT_RETURN_IF_ERROR(
        ReadChunkBox(p.chunk, piece, piece.shape(), whole, buffer_.data()));
    {
      PhaseTrace::Scope scope(trace_, "(verify)");
      hasher.AddRows(r, stop, buffer_.data(), piece.shape(), whole);
    }
    const Box wanted = Intersect(region, piece);  // Chunk coordinates.
    if (wanted.empty()) continue;
    std::vector<int64_t> into(chunk.rank());
    for (int d = 0; d < chunk.rank(); ++d) {
      into[d] = p.in_target.origin()[d] + wanted.origin()[d] - region.origin()[d];
    }
    CopyRegion(buffer_.data(), piece.shape(), RelativeTo(wanted, piece), target,
               target_box.shape(), Box::Unchecked(into, wanted.shape()), esize_);
  }
  for (int64_t t : grid.TilesIn(expanded)) {
    if (sums_[t] != record.tile_checksums[t]) return Mismatch(chunk, t);
  }
  if (buffer_.capacity() > static_cast<size_t>(4 * kReadPieceBytes)) {
    std::vector<char>().swap(buffer_);
  }
  return absl::OkStatus();
}

// The region is whole tiles (or unverified): read it straight into the
// target, about kReadPieceBytes at a time, hashing each piece right after.
absl::Status TensorReader::FillInPlace(int c, const TileGrid& grid, const ReshardPiece& p,
                                       const Box& target_box, void* target) {
  const Box& chunk = saved_.chunks[c];
  const Box& region = p.in_chunk;
  const bool verify = options_.verify_checksums;
  std::vector<int64_t> shift(region.rank());
  for (int d = 0; d < region.rank(); ++d) {
    shift[d] = p.in_target.origin()[d] - region.origin()[d];
  }
  if (verify) sums_.assign(grid.num_tiles(), 0);
  TileHasher hasher(grid, region, target, target_box.shape(), p.in_target, esize_,
                    sums_.data());
  const int64_t rows = region.rank() == 0 ? 1 : region.shape()[0];
  const int64_t begin = region.rank() == 0 ? 0 : region.origin()[0];
  const int64_t row_bytes = region.num_elements() / rows * esize_;
  const int64_t step = std::max<int64_t>(1, kReadPieceBytes / row_bytes);
  for (int64_t r = begin; r < begin + rows; r += step) {
    const int64_t stop = std::min(begin + rows, r + step);
    const Box part = Rows(region, r, stop);
    MESHCKPT_RETURN_IF_ERROR(
        ReadChunkBox(c, part, target_box.shape(), Shift(part, shift), target));
    if (verify) {
      PhaseTrace::Scope scope(trace_, "(verify)");
      hasher.AddRows(r, stop);
    }
  }
  if (!verify) return absl::OkStatus();
  const std::vector<uint64_t>& expected = index_.chunk(saved_, c).tile_checksums;
  for (int64_t t : grid.TilesIn(region)) {
    if (sums_[t] != expected[t]) return Mismatch(chunk, t);
  }
  return absl::OkStatus();
}

// String chunks are one tile: read whole, verify, copy the wanted part.
absl::Status TensorReader::FillStrings(const ReshardPiece& p, const Box& target_box,
                                       void* target) {
  const Box& chunk = saved_.chunks[p.chunk];
  std::vector<std::string> all(chunk.num_elements());
  if (absl::Status s = source_.ReadStrings(dataset_, chunk, all.data()); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("tensor '", saved_.key, "': ", s.message()));
  }
  for (const std::string& v : all) bytes_read_ += static_cast<int64_t>(v.size());
  if (options_.verify_checksums && HashStrings(all.data(), chunk.num_elements()) !=
                                       index_.chunk(saved_, p.chunk).tile_checksums[0]) {
    return Mismatch(chunk, 0);
  }
  CopyRegionOf(all.data(), chunk.shape(), p.in_chunk, static_cast<std::string*>(target),
               target_box.shape(), p.in_target);
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
