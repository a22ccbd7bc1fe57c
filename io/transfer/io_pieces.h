// How a large box is cut into transfers: along its first dimension of size
// > 1, into pieces of at most kMaxIoBytes, each contiguous in a row-major
// buffer of the box. MPI-IO counts are ints, so no single call should come
// near 2 GiB; collective writers also need the count to pad their calls.
#ifndef MESHCKPT_IO_TRANSFER_IO_PIECES_H_
#define MESHCKPT_IO_TRANSFER_IO_PIECES_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

inline constexpr int64_t kMaxIoBytes = int64_t{1} << 30;

// fn(piece, byte offset of the piece in the box's buffer) -> absl::Status.
template <typename Fn>
absl::Status ForEachIoPiece(const Box& box, int64_t element_size, Fn&& fn) {
  const int64_t bytes = box.num_elements() * element_size;
  int split = 0;
  while (split < box.rank() && box.shape()[split] == 1) ++split;
  if (bytes <= kMaxIoBytes || split >= box.rank()) return fn(box, int64_t{0});
  const int64_t slice_bytes = bytes / box.shape()[split];
  const int64_t per_piece = std::max<int64_t>(1, kMaxIoBytes / slice_bytes);
  for (int64_t lo = 0; lo < box.shape()[split]; lo += per_piece) {
    std::vector<int64_t> origin = box.origin(), shape = box.shape();
    origin[split] += lo;
    shape[split] = std::min(per_piece, box.shape()[split] - lo);
    absl::Status s = fn(Box::Unchecked(origin, shape), lo * slice_bytes);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

inline int64_t NumIoPieces(const Box& box, int64_t element_size) {
  int64_t n = 0;
  (void)ForEachIoPiece(box, element_size, [&](const Box&, int64_t) {
    ++n;
    return absl::OkStatus();
  });
  return n;
}

}  // namespace meshckpt

#endif  // MESHCKPT_IO_TRANSFER_IO_PIECES_H_
