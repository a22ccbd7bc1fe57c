// Box: an n-dimensional rectangle of int64 indices, one IndexInterval per
// dimension, stored as origin and shape vectors.
//
// Resharding needs only two primitives: Intersect(a, b), the elements in both,
// and RelativeTo(inner, outer), the same elements expressed in coordinates
// whose zero is outer's origin (i.e. inner.origin - outer.origin). A box of
// rank 0 is a scalar and holds exactly one element. Num elements of a valid
// box always fits in int64 (checked by Create). Immutable, thread-compatible.
//
//   Box a = Box::FromShape({4, 6});                     // [0,4) x [0,6)
//   Box b = *Box::Create({2, 3}, {4, 4});               // [2,6) x [3,7)
//   Box c = Intersect(a, b);                            // [2,4) x [3,6)
//   Box r = RelativeTo(c, b);                           // [0,2) x [0,3)
#ifndef MESHCKPT_LAYOUT_BOX_H_
#define MESHCKPT_LAYOUT_BOX_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "meshckpt/layout/index_interval.h"

namespace meshckpt {

// Product of `shape`, or InvalidArgument if a size is negative or the
// product overflows int64.
absl::StatusOr<int64_t> CheckedNumElements(absl::Span<const int64_t> shape);

class Box {
 public:
  Box() = default;  // Rank 0.

  static absl::StatusOr<Box> Create(std::vector<int64_t> origin,
                                    std::vector<int64_t> shape);
  // Origin zero; `shape` must be valid (see CheckedNumElements).
  static Box FromShape(std::vector<int64_t> shape);
  // Caller guarantees the invariants.
  static Box Unchecked(std::vector<int64_t> origin, std::vector<int64_t> shape);

  int rank() const { return static_cast<int>(shape_.size()); }
  const std::vector<int64_t>& origin() const { return origin_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  IndexInterval interval(int dim) const {
    return IndexInterval::UncheckedSized(origin_[dim], shape_[dim]);
  }
  int64_t num_elements() const;
  bool empty() const { return num_elements() == 0; }

  // True when every element of `inner` (same rank) is in this box.
  bool Contains(const Box& inner) const;

  std::string ToString() const;
  friend bool operator==(const Box& a, const Box& b) {
    return a.origin_ == b.origin_ && a.shape_ == b.shape_;
  }
  friend bool operator!=(const Box& a, const Box& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const Box& b) {
    return os << b.ToString();
  }

 private:
  Box(std::vector<int64_t> origin, std::vector<int64_t> shape)
      : origin_(std::move(origin)), shape_(std::move(shape)) {}

  std::vector<int64_t> origin_;
  std::vector<int64_t> shape_;
};

// Elements in both boxes (same rank). Empty when they do not overlap.
Box Intersect(const Box& a, const Box& b);
// `inner` in coordinates relative to `outer`'s origin; `outer` must contain
// `inner`.
Box RelativeTo(const Box& inner, const Box& outer);

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_BOX_H_
