// Random meshes, layouts and shapes for the property tests of layout/, plus
// small brute-force helpers (element enumeration over a box). Header-only;
// every function is inline and deterministic given the generator state.
#ifndef MESHCKPT_TESTS_LAYOUT_RANDOM_LAYOUTS_H_
#define MESHCKPT_TESTS_LAYOUT_RANDOM_LAYOUTS_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace testing_util {

// Uniform integer in [lo, hi].
inline int64_t RandomInt(std::mt19937& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// A mesh of 1-3 dimensions of sizes 1-7, spread over a random divisor of its
// device count of ranks, viewed from rank 0.
inline Mesh RandomMesh(std::mt19937& rng) {
  static const char* const kNames[] = {"x", "y", "z", "batch", "model", "seq"};
  std::vector<std::string> names(std::begin(kNames), std::end(kNames));
  std::shuffle(names.begin(), names.end(), rng);
  const int num_dims = static_cast<int>(RandomInt(rng, 1, 3));
  std::vector<MeshDimension> dims;
  int64_t devices = 1;
  for (int i = 0; i < num_dims; ++i) {
    const int64_t size = RandomInt(rng, 1, 7);
    dims.push_back({names[i], size});
    devices *= size;
  }
  std::vector<int> divisors;
  for (int r = 1; r <= devices; ++r) {
    if (devices % r == 0) divisors.push_back(r);
  }
  const int num_ranks =
      divisors[RandomInt(rng, 0, static_cast<int64_t>(divisors.size()) - 1)];
  return Mesh::Create(std::move(dims), /*rank=*/0, num_ranks).value();
}

// Each tensor dimension is either unsharded or a distinct random mesh dim.
inline Layout RandomLayout(std::mt19937& rng, const Mesh& mesh, int tensor_rank) {
  std::vector<int> unused(mesh.num_dims());
  for (int i = 0; i < mesh.num_dims(); ++i) unused[i] = i;
  std::shuffle(unused.begin(), unused.end(), rng);
  std::vector<std::string> specs;
  for (int d = 0; d < tensor_rank; ++d) {
    if (!unused.empty() && RandomInt(rng, 0, 2) != 0) {
      specs.push_back(mesh.dims()[unused.back()].name);
      unused.pop_back();
    } else {
      specs.push_back(std::string(kUnsharded));
    }
  }
  return Layout::Create(std::move(specs), mesh).value();
}

// Each dimension 0-9.
inline std::vector<int64_t> RandomShape(std::mt19937& rng, int tensor_rank) {
  std::vector<int64_t> shape(tensor_rank);
  for (int64_t& s : shape) s = RandomInt(rng, 0, 9);
  return shape;
}

struct RandomCase {
  Layout layout;
  std::vector<int64_t> shape;

  const Mesh& mesh() const { return layout.mesh(); }
  // For failure messages.
  std::string Describe() const {
    return absl::StrCat(
        "mesh=", layout.mesh().ToString(), " (ranks=", layout.mesh().num_ranks(),
        ") layout=", layout.ToString(), " shape=[", absl::StrJoin(shape, ","), "]");
  }
};

// Random mesh, tensor rank 0-3, layout and shape.
inline RandomCase RandomShardingCase(std::mt19937& rng) {
  Mesh mesh = RandomMesh(rng);
  const int tensor_rank = static_cast<int>(RandomInt(rng, 0, 3));
  Layout layout = RandomLayout(rng, mesh, tensor_rank);
  std::vector<int64_t> shape = RandomShape(rng, tensor_rank);
  return RandomCase{std::move(layout), std::move(shape)};
}

// Row-major linear index of `index` (global coordinates) within `shape`.
inline int64_t LinearIndex(const std::vector<int64_t>& shape,
                           const std::vector<int64_t>& index) {
  int64_t linear = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    linear = linear * shape[d] + index[d];
  }
  return linear;
}

// Calls fn(index) for every element of `box` (global coordinates), row-major.
// A rank-0 box has exactly one element, the empty index.
inline void ForEachIndex(const Box& box,
                         const std::function<void(const std::vector<int64_t>&)>& fn) {
  const int r = box.rank();
  for (int d = 0; d < r; ++d) {
    if (box.shape()[d] == 0) return;
  }
  std::vector<int64_t> index = box.origin();
  while (true) {
    fn(index);
    int d = r - 1;
    for (; d >= 0; --d) {
      if (++index[d] < box.origin()[d] + box.shape()[d]) break;
      index[d] = box.origin()[d];
    }
    if (d < 0) return;
  }
}

inline bool BoxHolds(const Box& box, const std::vector<int64_t>& index) {
  for (int d = 0; d < box.rank(); ++d) {
    if (index[d] < box.origin()[d] || index[d] >= box.origin()[d] + box.shape()[d]) {
      return false;
    }
  }
  return true;
}

}  // namespace testing_util
}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_LAYOUT_RANDOM_LAYOUTS_H_
