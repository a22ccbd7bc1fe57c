// Filling a box of a saved tensor from its chunks, every tile verified.
#include "checkpoint/engine/tensor_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "checkpoint/engine/shard_io_internal.h"
#include "io/format/checksum.h"
#include "layout/region.h"
#include "layout/reshard_plan.h"

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

absl::StatusOr<std::unique_ptr<DataSource>> DataSource::OpenDirect(
    const std::string& path) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DirectFile> direct,
                            DirectFile::Open(path, DirectFile::kRead));
  auto source = std::make_unique<DataSource>(path, nullptr);
  source->direct_ = std::move(direct);
  return source;
}

DataSource::DataSource(std::string path, std::unique_ptr<DataFileReader> hdf5)
    : path_(std::move(path)), hdf5_(std::move(hdf5)) {}

DataSource::~DataSource() { (void)Close(); }

absl::StatusOr<DataFileReader*> DataSource::Hdf5() {
  if (hdf5_ == nullptr) {
    std::unique_ptr<Communicator> serial = SerialCommunicator();
    MESHCKPT_ASSIGN_OR_RETURN(hdf5_,
                              DataFileReader::Open(*serial, path_, FileOptions(false, {})));
  }
  return hdf5_.get();
}

absl::StatusOr<int> DataSource::Dataset(const CheckpointIndex::Tensor& t) {
  MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, Hdf5());
  return r->OpenDataset(t.dataset, t.dtype, t.shape);
}

absl::StatusOr<std::optional<StorageBlock>> DataSource::ChunkStorage(
    const CheckpointIndex::Tensor& t, int c) {
  if (direct_ == nullptr || t.dtype == DType::kString) return std::nullopt;
  if (t.storage[c].has_value()) return t.storage[c];
  auto it = located_.find(t.dataset);
  if (it == located_.end()) {
    MESHCKPT_ASSIGN_OR_RETURN(int d, Dataset(t));
    MESHCKPT_ASSIGN_OR_RETURN(std::vector<StorageBlock> blocks, hdf5_->Locate(d));
    it = located_.emplace(t.dataset, std::move(blocks)).first;
  }
  return BlockHolding(it->second, t.chunks[c], DTypeSize(t.dtype));
}

absl::Status DataSource::Close() {
  absl::Status s;
  if (direct_ != nullptr) s = direct_->Close();
  if (hdf5_ != nullptr) {
    absl::Status h = hdf5_->Close();
    if (s.ok()) s = h;
  }
  return s;
}

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

absl::Status TensorReader::ReadChunkBox(int c, const std::optional<StorageBlock>& block,
                                        const Box& box, absl::Span<const int64_t> dst_shape,
                                        const Box& dst_box, void* dst) {
  PhaseTrace::Scope scope(trace_, "(read)");
  const Box global = Shift(box, saved_.chunks[c].origin());
  if (block.has_value()) {
    absl::Status s = source_.direct()->Read(*block, global, esize_, dst_shape, dst_box, dst);
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat("tensor '", saved_.key, "', chunk ",
                                               saved_.chunks[c].ToString(), ": ",
                                               s.message()));
  }
  MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, source_.Hdf5());
  MESHCKPT_ASSIGN_OR_RETURN(int d, source_.Dataset(saved_));
  if (dst_box == Box::FromShape({dst_shape.begin(), dst_shape.end()})) {
    return r->Read(d, global, dst);
  }
  hdf5_buffer_.resize(box.num_elements() * esize_);
  MESHCKPT_RETURN_IF_ERROR(r->Read(d, global, hdf5_buffer_.data()));
  CopyRegion(hdf5_buffer_.data(), box.shape(), Box::FromShape(box.shape()), dst, dst_shape,
             dst_box, esize_);
  return absl::OkStatus();
}

absl::Status TensorReader::FillPiece(const ReshardPiece& p, const Box& target_box,
                                     void* target) {
  const Box& chunk = saved_.chunks[p.chunk];
  const ChunkRecord& record = index_.chunk(saved_, p.chunk);
  const TileGrid grid(chunk.shape(), record.tile_shape);
  const Box& region = p.in_chunk;
  const Box expanded = options_.verify_checksums ? grid.Expand(region) : region;
  MESHCKPT_ASSIGN_OR_RETURN(std::optional<StorageBlock> block,
                            source_.ChunkStorage(saved_, p.chunk));
  if (expanded == region) {
    return FillInPlace(p.chunk, block, grid, p, target_box, target);
  }
  // The region cuts through tiles: read whole tiles, a few hundred KiB of
  // rows at a time, into a staging buffer; hash them and copy out the
  // wanted part while they are in cache; check the sums at the end.
  sums_.assign(grid.num_tiles(), 0);
  TileHasher hasher(grid, expanded, nullptr, chunk.shape(), expanded, esize_, sums_.data());
  const int64_t begin = expanded.origin()[0], end = begin + expanded.shape()[0];
  const int64_t row_bytes = expanded.num_elements() / expanded.shape()[0] * esize_;
  const int64_t step = std::max<int64_t>(1, kReadPieceBytes / row_bytes);
  for (int64_t r = begin; r < end; r += step) {
    const int64_t stop = std::min(end, r + step);
    const Box piece = Rows(expanded, r, stop);
    const Box whole = Box::FromShape(piece.shape());
    buffer_.resize(piece.num_elements() * esize_);
    MESHCKPT_RETURN_IF_ERROR(
        ReadChunkBox(p.chunk, block, piece, piece.shape(), whole, buffer_.data()));
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
absl::Status TensorReader::FillInPlace(int c, const std::optional<StorageBlock>& block,
                                       const TileGrid& grid, const ReshardPiece& p,
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
        ReadChunkBox(c, block, part, target_box.shape(), Shift(part, shift), target));
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
  MESHCKPT_ASSIGN_OR_RETURN(DataFileReader * r, source_.Hdf5());
  MESHCKPT_ASSIGN_OR_RETURN(int d, source_.Dataset(saved_));
  std::vector<std::string> all(chunk.num_elements());
  if (absl::Status s = r->ReadStrings(d, chunk, all.data()); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("tensor '", saved_.key, "': ", s.message()));
  }
  if (options_.verify_checksums &&
      HashStrings(all.data(), chunk.num_elements()) !=
          index_.chunk(saved_, p.chunk).tile_checksums[0]) {
    return Mismatch(chunk, 0);
  }
  CopyRegionOf(all.data(), chunk.shape(), p.in_chunk, static_cast<std::string*>(target),
               target_box.shape(), p.in_target);
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
