// Helpers of the CheckpointReader tests: checkpoints written with
// SaveTensors on a SerialCommunicator, every element a function of its
// global flat index, and the expected contents of any box.
#ifndef MESHCKPT_TESTS_CHECKPOINT_READER_READER_TEST_UTIL_H_
#define MESHCKPT_TESTS_CHECKPOINT_READER_READER_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt::reader_test {

inline std::string TempPrefix(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir ? dir : "/tmp";
  return base + "/meshckpt_reader_" + name + "_" + RandomId();
}

// Global flat index of element `i` (row-major) of `box` in a tensor of
// `shape`.
inline int64_t GlobalIndex(const Box& box, const std::vector<int64_t>& shape, int64_t i) {
  std::vector<int64_t> idx(box.rank(), 0);
  for (int k = box.rank() - 1; k >= 0; --k) {
    idx[k] = i % box.shape()[k];
    i /= box.shape()[k];
  }
  int64_t g = 0;
  for (int k = 0; k < box.rank(); ++k) g = g * shape[k] + box.origin()[k] + idx[k];
  return g;
}

// A tensor to save: per-device buffers of fn(global index) and the whole
// tensor, for comparing.
template <typename T>
struct Tensor {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  std::optional<Layout> layout;  // Layout has no default constructor.
  std::vector<std::vector<T>> device_buffers;
  std::vector<T> whole;

  SaveTensor ToSave() const {
    SaveTensor s{key, "", dtype, shape, *layout, {}};
    for (const auto& b : device_buffers) s.device_data.push_back(b.data());
    return s;
  }
  // Elements of `box` of the whole tensor, row-major.
  std::vector<T> Expected(const Box& box) const {
    std::vector<T> out;
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      out.push_back(whole[GlobalIndex(box, shape, i)]);
    }
    return out;
  }
};

template <typename T, typename Fn>
Tensor<T> MakeTensor(std::string key, DType dtype, std::vector<int64_t> shape,
                     Layout layout, Fn fn) {
  Tensor<T> t{std::move(key), dtype, shape, layout, {}, {}};
  ShardMap map = ShardMap::Create(layout, shape).value();
  for (int64_t d : layout.mesh().local_device_ids()) {
    Box box = map.DeviceBox(d);
    std::vector<T> buf;
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      buf.push_back(fn(GlobalIndex(box, shape, i)));
    }
    t.device_buffers.push_back(std::move(buf));
  }
  const int64_t n = Box::FromShape(shape).num_elements();
  for (int64_t g = 0; g < n; ++g) t.whole.push_back(fn(g));
  return t;
}

// The raw bytes of `v`.
template <typename T>
std::vector<char> Bytes(const std::vector<T>& v) {
  std::vector<char> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

inline void RemoveCheckpoint(const std::string& prefix) {
  (void)RemoveFileIfExists(DataFilePath(prefix));
  (void)RemoveFileIfExists(IndexFilePath(prefix));
}

}  // namespace meshckpt::reader_test

#endif  // MESHCKPT_TESTS_CHECKPOINT_READER_READER_TEST_UTIL_H_
