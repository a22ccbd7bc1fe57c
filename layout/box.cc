// Box: a hyper-rectangle of a tensor, and intersection of boxes.
#include "meshckpt/layout/box.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt {

absl::StatusOr<int64_t> CheckedNumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t s : shape) {
    if (s < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dimension size ", s, " is negative"));
    }
    if (s == 0) return 0;  // Zero wins over any overflow of the rest.
    if (n > std::numeric_limits<int64_t>::max() / s) overflow = true;
    n = overflow ? n : n * s;
  }
  if (overflow) {
    std::string dims;
    for (int64_t s : shape) absl::StrAppend(&dims, dims.empty() ? "" : ",", s);
    return absl::InvalidArgumentError(
        absl::StrCat("shape [", dims, "] has more elements than fit in int64"));
  }
  return n;
}

absl::StatusOr<Box> Box::Create(std::vector<int64_t> origin, std::vector<int64_t> shape) {
  if (origin.size() != shape.size()) {
    return absl::InvalidArgumentError(absl::StrCat("box origin has rank ", origin.size(),
                                                   " but shape has rank ", shape.size()));
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    MESHCKPT_RETURN_IF_ERROR(IndexInterval::Create(origin[i], shape[i]).status());
  }
  MESHCKPT_RETURN_IF_ERROR(CheckedNumElements(shape).status());
  return Box(std::move(origin), std::move(shape));
}

Box Box::FromShape(std::vector<int64_t> shape) {
  std::vector<int64_t> origin(shape.size(), 0);
  return Box(std::move(origin), std::move(shape));
}

Box Box::Unchecked(std::vector<int64_t> origin, std::vector<int64_t> shape) {
  return Box(std::move(origin), std::move(shape));
}

int64_t Box::num_elements() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

bool Box::Contains(const Box& inner) const {
  if (inner.rank() != rank()) return false;
  for (int i = 0; i < rank(); ++i) {
    if (!interval(i).Contains(inner.interval(i))) return false;
  }
  return true;
}

std::string Box::ToString() const {
  std::string out = "{";
  for (int i = 0; i < rank(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", "[", origin_[i], ", ", origin_[i] + shape_[i],
                    ")");
  }
  return out + "}";
}

Box Intersect(const Box& a, const Box& b) {
  std::vector<int64_t> origin(a.rank()), shape(a.rank());
  for (int i = 0; i < a.rank(); ++i) {
    IndexInterval c = Intersect(a.interval(i), b.interval(i));
    origin[i] = c.origin();
    shape[i] = c.size();
  }
  return Box::Unchecked(std::move(origin), std::move(shape));
}

Box RelativeTo(const Box& inner, const Box& outer) {
  std::vector<int64_t> origin(inner.rank());
  for (int i = 0; i < inner.rank(); ++i) {
    origin[i] = inner.origin()[i] - outer.origin()[i];
  }
  return Box::Unchecked(std::move(origin), inner.shape());
}

}  // namespace meshckpt
