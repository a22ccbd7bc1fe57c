// IndexInterval: a half-open range [origin, origin + size) of int64 indices.
//
// Invariants (checked by Create): origin >= 0, size >= 0 and origin + size
// does not overflow. An interval of size 0 is empty; all empty intervals
// compare equal only when their origins match too, since the origin still
// says where an empty shard sits. Immutable, thread-compatible.
//
//   IndexInterval a = IndexInterval::UncheckedSized(2, 5);   // [2, 7)
//   IndexInterval b = Intersect(a, IndexInterval::UncheckedSized(4, 10));
//   // b == [4, 7)
#ifndef MESHCKPT_LAYOUT_INDEX_INTERVAL_H_
#define MESHCKPT_LAYOUT_INDEX_INTERVAL_H_

#include <algorithm>
#include <cstdint>
#include <ostream>

#include "absl/status/statusor.h"

namespace meshckpt {

class IndexInterval {
 public:
  constexpr IndexInterval() = default;

  static absl::StatusOr<IndexInterval> Create(int64_t origin, int64_t size);
  // Caller guarantees the invariants.
  static constexpr IndexInterval UncheckedSized(int64_t origin, int64_t size) {
    return IndexInterval(origin, size);
  }

  constexpr int64_t origin() const { return origin_; }
  constexpr int64_t size() const { return size_; }
  constexpr int64_t exclusive_max() const { return origin_ + size_; }
  constexpr bool empty() const { return size_ == 0; }

  // True when every index of `inner` is in this interval. An empty `inner`
  // is contained when its origin lies within [origin, exclusive_max].
  constexpr bool Contains(IndexInterval inner) const {
    return inner.origin_ >= origin_ && inner.exclusive_max() <= exclusive_max();
  }

  friend constexpr bool operator==(IndexInterval a, IndexInterval b) {
    return a.origin_ == b.origin_ && a.size_ == b.size_;
  }
  friend constexpr bool operator!=(IndexInterval a, IndexInterval b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, IndexInterval i) {
    return os << "[" << i.origin_ << ", " << i.exclusive_max() << ")";
  }

 private:
  constexpr IndexInterval(int64_t origin, int64_t size) : origin_(origin), size_(size) {}

  int64_t origin_ = 0;
  int64_t size_ = 0;
};

// The common part of a and b; empty (at the larger origin) when disjoint.
constexpr IndexInterval Intersect(IndexInterval a, IndexInterval b) {
  const int64_t lo = std::max(a.origin(), b.origin());
  const int64_t hi = std::min(a.exclusive_max(), b.exclusive_max());
  return IndexInterval::UncheckedSized(lo, hi > lo ? hi - lo : 0);
}

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_INDEX_INTERVAL_H_
