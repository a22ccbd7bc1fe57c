// IndexInterval: half-open ranges of indices along one dimension.
#include "meshckpt/layout/index_interval.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshckpt {

absl::StatusOr<IndexInterval> IndexInterval::Create(int64_t origin, int64_t size) {
  if (origin < 0 || size < 0 || origin > std::numeric_limits<int64_t>::max() - size) {
    return absl::InvalidArgumentError(
        absl::StrCat("interval origin ", origin, " size ", size,
                     " must have origin >= 0, size >= 0 and an end that fits in int64"));
  }
  return IndexInterval(origin, size);
}

}  // namespace meshckpt
