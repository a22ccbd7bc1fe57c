// Walking a box-shaped region of a row-major buffer as contiguous runs.
//
// A buffer of shape S stores element (i0, ..., in) at offset
//   ((i0 * S1 + i1) * S2 + ...) * Sn + in.
// A region R (a Box in buffer coordinates, inside S) is a set of runs along
// the last dimension; when R spans the whole of the trailing dimensions of
// both buffers, consecutive runs merge, so copying a full row-block is one
// memcpy. ForEachRunPair walks a region of one buffer and an equally shaped
// region of another in lockstep, which is all a reshard copy needs.
//
//   // Copy the 2x3 block at (1, 2) of a 4x6 buffer to (0, 0) of a 2x3 one.
//   ForEachRunPair({4, 6}, *Box::Create({1, 2}, {2, 3}), {2, 3},
//                  Box::FromShape({2, 3}),
//                  [&](int64_t s, int64_t d, int64_t n) { ... });
//
// Pure functions; thread-safe.
#ifndef MESHCKPT_LAYOUT_REGION_H_
#define MESHCKPT_LAYOUT_REGION_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/types/span.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

// fn(src_offset, dst_offset, count), offsets and count in elements. The two
// regions must have equal shapes and lie inside their buffers.
template <typename Fn>
void ForEachRunPair(absl::Span<const int64_t> src_shape, const Box& src_region,
                    absl::Span<const int64_t> dst_shape, const Box& dst_region, Fn&& fn) {
  const int rank = src_region.rank();
  const std::vector<int64_t>& shape = src_region.shape();
  if (src_region.num_elements() == 0) return;
  if (rank == 0) {
    fn(0, 0, 1);
    return;
  }
  // Merge trailing dims while both regions span their buffers fully there.
  int inner = rank - 1;  // Dims [inner, rank) form one run.
  int64_t run = shape[rank - 1];
  while (inner > 0 && shape[inner] == src_shape[inner] &&
         shape[inner] == dst_shape[inner]) {
    --inner;
    run *= shape[inner];
  }
  // Strides in elements.
  std::vector<int64_t> src_stride(rank, 1), dst_stride(rank, 1);
  for (int d = rank - 2; d >= 0; --d) {
    src_stride[d] = src_stride[d + 1] * src_shape[d + 1];
    dst_stride[d] = dst_stride[d + 1] * dst_shape[d + 1];
  }
  int64_t src_base = 0, dst_base = 0;
  for (int d = 0; d < rank; ++d) {
    src_base += src_region.origin()[d] * src_stride[d];
    dst_base += dst_region.origin()[d] * dst_stride[d];
  }
  std::vector<int64_t> idx(inner, 0);  // Odometer over dims [0, inner).
  while (true) {
    int64_t s = src_base, t = dst_base;
    for (int d = 0; d < inner; ++d) {
      s += idx[d] * src_stride[d];
      t += idx[d] * dst_stride[d];
    }
    fn(s, t, run);
    int d = inner - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

// Copies a region of `src` (row-major, shape src_shape) into an equally
// shaped region of `dst`, for trivially copyable elements of `element_size`
// bytes.
inline void CopyRegion(const void* src, absl::Span<const int64_t> src_shape,
                       const Box& src_region, void* dst,
                       absl::Span<const int64_t> dst_shape, const Box& dst_region,
                       int64_t element_size) {
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  ForEachRunPair(src_shape, src_region, dst_shape, dst_region,
                 [&](int64_t so, int64_t doff, int64_t n) {
                   std::memcpy(d + doff * element_size, s + so * element_size,
                               n * element_size);
                 });
}

// The same for arrays of a copyable type (e.g. std::string).
template <typename T>
void CopyRegionOf(const T* src, absl::Span<const int64_t> src_shape,
                  const Box& src_region, T* dst, absl::Span<const int64_t> dst_shape,
                  const Box& dst_region) {
  ForEachRunPair(src_shape, src_region, dst_shape, dst_region,
                 [&](int64_t so, int64_t doff, int64_t n) {
                   for (int64_t i = 0; i < n; ++i) dst[doff + i] = src[so + i];
                 });
}

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_REGION_H_
