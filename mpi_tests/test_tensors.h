// Test tensors for the multi-rank checkpoint tests: a value for every element
// of every tensor as a pure function of (tensor key, dtype, GLOBAL flat
// index), and per-device buffers filled from it or checked against it.
//
// Because values depend only on the global index, a tensor saved under any
// mesh/layout/rank count and restored under any other must come back with
// exactly the same bytes in every device buffer; a restore that mixes up
// tensors, shards, offsets or strides shows up as a mismatch that names the
// tensor, dtype, rank, device and global index.
//
// Values, for global flat index g (row-major over the global shape; 0 for a
// scalar) and h = KeyHash(key):
//   float32/float64      g * 0.5 + h % 1024           (exact in both)
//   int*/uint*           g * 31 + h, truncated to the type (little-endian)
//   bool                 (g * 7 + h) % 3 == 0          (one byte, 0 or 1)
//   complex64/128        (g + h % 1024, -g)
//   bfloat16/float16     raw bits (g * 2654435761 + h) & 0xffff, so NaN and
//                        Inf patterns occur and must survive bit-exactly
//   string               "s<h%1000>:<g>" + (g % 5) 'x's; empty when
//                        g % 11 == 3; with an embedded '\0' when g % 13 == 5;
//                        longer (100+ bytes) when g % 17 == 16
// Comparisons are memcmp per element (never float ==).
//
// Buffers are allocated with one extra guard element after each device's
// data, set to a sentinel, so writes past the end of a device box are caught.
// Header-only; thread-compatible.
#ifndef MESHCKPT_MPI_TESTS_TEST_TENSORS_H_
#define MESHCKPT_MPI_TESTS_TEST_TENSORS_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace test {

struct TensorSpec {
  std::string key;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
};

// FNV-1a, 64-bit.
inline uint64_t KeyHash(absl::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

inline int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Row-major flat index of `coord` in `shape` (0 for a scalar).
inline int64_t GlobalFlatIndex(const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& coord) {
  int64_t g = 0;
  for (size_t d = 0; d < shape.size(); ++d) g = g * shape[d] + coord[d];
  return g;
}

// Calls fn(local_flat, global_coord, global_flat) for every element of `box`
// in row-major order over the box (local_flat = 0, 1, 2, ...). A rank-0 box
// has one element; an empty box has none.
template <typename Fn>
void ForEachInBox(const Box& box, const std::vector<int64_t>& global_shape, Fn fn) {
  const int r = box.rank();
  for (int d = 0; d < r; ++d) {
    if (box.shape()[d] == 0) return;
  }
  std::vector<int64_t> coord = box.origin();
  int64_t local = 0;
  while (true) {
    fn(local, coord, GlobalFlatIndex(global_shape, coord));
    ++local;
    int d = r - 1;
    for (; d >= 0; --d) {
      if (++coord[d] < box.origin()[d] + box.shape()[d]) break;
      coord[d] = box.origin()[d];
    }
    if (d < 0) return;
  }
}

// The bytes of element g of a fixed-size tensor (DTypeSize(dtype) of them).
inline void ExpectedElement(DType dtype, uint64_t h, int64_t g, void* out) {
  const uint64_t ug = static_cast<uint64_t>(g);
  switch (dtype) {
    case DType::kFloat32: {
      const float v = static_cast<float>(static_cast<double>(g) * 0.5 +
                                         static_cast<double>(h % 1024));
      std::memcpy(out, &v, sizeof v);
      return;
    }
    case DType::kFloat64: {
      const double v = static_cast<double>(g) * 0.5 + static_cast<double>(h % 1024);
      std::memcpy(out, &v, sizeof v);
      return;
    }
    case DType::kComplex64: {
      const float v[2] = {static_cast<float>(g + static_cast<int64_t>(h % 1024)),
                          static_cast<float>(-g)};
      std::memcpy(out, v, sizeof v);
      return;
    }
    case DType::kComplex128: {
      const double v[2] = {static_cast<double>(g + static_cast<int64_t>(h % 1024)),
                           static_cast<double>(-g)};
      std::memcpy(out, v, sizeof v);
      return;
    }
    case DType::kBool: {
      const unsigned char v = (ug * 7 + h) % 3 == 0 ? 1 : 0;
      std::memcpy(out, &v, 1);
      return;
    }
    case DType::kBfloat16:
    case DType::kFloat16: {
      const uint16_t v = static_cast<uint16_t>((ug * 2654435761ull + h) & 0xffff);
      std::memcpy(out, &v, 2);
      return;
    }
    default: {
      // Integers: little-endian truncation of g * 31 + h.
      uint64_t v = ug * 31 + h;
      unsigned char bytes[8];
      for (int i = 0; i < 8; ++i) {
        bytes[i] = static_cast<unsigned char>(v & 0xff);
        v >>= 8;
      }
      std::memcpy(out, bytes, static_cast<size_t>(DTypeSize(dtype)));
      return;
    }
  }
}

inline std::string ExpectedString(uint64_t h, int64_t g) {
  if (g % 11 == 3) return std::string();
  std::string s = absl::StrCat("s", h % 1000, ":", g);
  if (g % 13 == 5) s += std::string("\0nul", 4);
  s += std::string(static_cast<size_t>(g % 5), 'x');
  if (g % 17 == 16) s += std::string(100 + static_cast<size_t>(g % 23), 'L');
  return s;
}

// What an untouched (restore target) buffer holds.
inline constexpr unsigned char kSentinelByte = 0xA5;
inline const std::string& SentinelString() {
  static const std::string* s = new std::string("\x01<untouched>\x02");
  return *s;
}

inline std::string HexBytes(const void* p, int64_t n) {
  return absl::StrCat("0x", absl::BytesToHexString(absl::string_view(
                                static_cast<const char*>(p), static_cast<size_t>(n))));
}

inline std::string CoordText(const std::vector<int64_t>& c) {
  return absl::StrCat("[", absl::StrJoin(c, ","), "]");
}

// The buffers of one tensor for this rank's devices of `layout`'s mesh: one
// per local device, in mesh.local_device_ids() order, each holding
// ShardMap::DeviceBox(device) row-major plus one guard element.
class DeviceBuffers {
 public:
  // Every element (and guard) set to the sentinel.
  static DeviceBuffers Sentinel(const TensorSpec& spec, const Layout& layout) {
    DeviceBuffers b;
    b.spec_ = spec;
    b.hash_ = KeyHash(spec.key);
    b.layout_text_ = layout.ToString();
    const ShardMap map = ShardMap::Create(layout, spec.shape).value();
    b.device_ids_ = layout.mesh().local_device_ids();
    const int64_t esize = DTypeSize(spec.dtype);
    for (int64_t dev : b.device_ids_) {
      const Box box = map.DeviceBox(dev);
      const int64_t n = box.num_elements() + 1;  // + guard
      b.boxes_.push_back(box);
      if (spec.dtype == DType::kString) {
        b.str_.emplace_back(static_cast<size_t>(n), SentinelString());
        b.raw_.emplace_back();
      } else {
        b.raw_.emplace_back(static_cast<size_t>(n * esize), kSentinelByte);
        b.str_.emplace_back();
      }
    }
    return b;
  }

  // Every element set from the value function (guards stay sentinel).
  static DeviceBuffers Filled(const TensorSpec& spec, const Layout& layout) {
    DeviceBuffers b = Sentinel(spec, layout);
    const int64_t esize = DTypeSize(spec.dtype);
    for (size_t i = 0; i < b.boxes_.size(); ++i) {
      ForEachInBox(b.boxes_[i], spec.shape,
                   [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
                     if (spec.dtype == DType::kString) {
                       b.str_[i][static_cast<size_t>(local)] = ExpectedString(b.hash_, g);
                     } else {
                       ExpectedElement(spec.dtype, b.hash_, g,
                                       b.raw_[i].data() + local * esize);
                     }
                   });
    }
    return b;
  }

  const TensorSpec& spec() const { return spec_; }
  const std::vector<int64_t>& device_ids() const { return device_ids_; }
  const std::vector<Box>& boxes() const { return boxes_; }

  std::vector<const void*> ConstPtrs() const {
    std::vector<const void*> out;
    for (size_t i = 0; i < boxes_.size(); ++i) {
      out.push_back(spec_.dtype == DType::kString
                        ? static_cast<const void*>(str_[i].data())
                        : static_cast<const void*>(raw_[i].data()));
    }
    return out;
  }
  std::vector<void*> Ptrs() {
    std::vector<void*> out;
    for (size_t i = 0; i < boxes_.size(); ++i) {
      out.push_back(spec_.dtype == DType::kString ? static_cast<void*>(str_[i].data())
                                                  : static_cast<void*>(raw_[i].data()));
    }
    return out;
  }

  // Checks every element against the value function (want_values) or the
  // sentinel (!want_values), and every guard against the sentinel. Returns
  // the number of bad elements; describes the first `max_report` of them in
  // `report`, each naming key, dtype, rank, device and global index.
  int64_t Check(bool want_values, int rank, std::string* report,
                int max_report = 4) const {
    int64_t bad = 0;
    const int64_t esize = DTypeSize(spec_.dtype);
    const bool is_str = spec_.dtype == DType::kString;
    std::vector<unsigned char> expect(static_cast<size_t>(esize ? esize : 1));
    std::vector<unsigned char> sentinel(expect.size(), kSentinelByte);
    auto describe = [&](int64_t dev, const std::string& where, const std::string& want,
                        const std::string& got) {
      ++bad;
      if (bad <= max_report) {
        absl::StrAppend(report, "  key=", spec_.key, " dtype=", DTypeName(spec_.dtype),
                        " rank=", rank, " device=", dev, " ", where, ": expected ", want,
                        " got ", got, "\n");
      }
    };
    for (size_t i = 0; i < boxes_.size(); ++i) {
      const int64_t dev = device_ids_[i];
      ForEachInBox(
          boxes_[i], spec_.shape,
          [&](int64_t local, const std::vector<int64_t>& coord, int64_t g) {
            const std::string where =
                absl::StrCat("global_index=", CoordText(coord), " (flat ", g, ")");
            if (is_str) {
              const std::string& got = str_[i][static_cast<size_t>(local)];
              const std::string want = want_values ? ExpectedString(hash_, g)
                                                   : SentinelString();
              if (got != want) {
                describe(dev, where, absl::StrCat("\"", absl::CEscape(want), "\""),
                         absl::StrCat("\"", absl::CEscape(got), "\""));
              }
            } else {
              if (want_values) {
                ExpectedElement(spec_.dtype, hash_, g, expect.data());
              }
              const unsigned char* want = want_values ? expect.data() : sentinel.data();
              const unsigned char* got = raw_[i].data() + local * esize;
              if (std::memcmp(want, got, static_cast<size_t>(esize)) != 0) {
                describe(dev, where, HexBytes(want, esize), HexBytes(got, esize));
              }
            }
          });
      // Guard element after the box.
      const int64_t n = boxes_[i].num_elements();
      const std::string where = absl::StrCat("guard after box ", boxes_[i].ToString());
      if (is_str) {
        const std::string& got = str_[i][static_cast<size_t>(n)];
        if (got != SentinelString()) {
          describe(dev, where, "sentinel", absl::StrCat("\"", absl::CEscape(got), "\""));
        }
      } else if (std::memcmp(raw_[i].data() + n * esize, sentinel.data(),
                             static_cast<size_t>(esize)) != 0) {
        describe(dev, where, "sentinel", HexBytes(raw_[i].data() + n * esize, esize));
      }
    }
    if (bad > max_report) {
      absl::StrAppend(report, "  ... ", bad - max_report, " more in key=", spec_.key,
                      " on rank ", rank, "\n");
    }
    if (bad > 0) {
      absl::StrAppend(report, "  (layout of key=", spec_.key, ": ", layout_text_, ")\n");
    }
    return bad;
  }

 private:
  TensorSpec spec_;
  uint64_t hash_ = 0;
  std::string layout_text_;
  std::vector<int64_t> device_ids_;
  std::vector<Box> boxes_;
  std::vector<std::vector<unsigned char>> raw_;
  std::vector<std::vector<std::string>> str_;
};

// `sharding_specs` for a tensor of `tensor_rank` dims on a mesh with `dims`.
enum class Style { kRows, kCols, kGrid, kTransposed, kReplicated };
inline constexpr int kNumStyles = 5;

inline absl::string_view StyleName(Style s) {
  switch (s) {
    case Style::kRows:
      return "rows";
    case Style::kCols:
      return "cols";
    case Style::kGrid:
      return "grid";
    case Style::kTransposed:
      return "transposed";
    case Style::kReplicated:
      return "replicated";
  }
  return "?";
}

// rows:       dim 0 over the first mesh dim
// cols:       last dim over the last mesh dim
// grid:       dim 0 over the first, last dim over the last mesh dim
// transposed: dim 0 over the last, last dim over the first mesh dim
// replicated: nothing sharded
// (1-D tensors or 1-D meshes use whichever single assignment applies.)
inline std::vector<std::string> SpecsFor(const std::vector<MeshDimension>& dims,
                                         int tensor_rank, Style style) {
  std::vector<std::string> specs(static_cast<size_t>(tensor_rank),
                                 std::string(kUnsharded));
  if (tensor_rank == 0) return specs;
  const std::string& first = dims.front().name;
  const std::string& last = dims.back().name;
  const bool two = tensor_rank >= 2 && first != last;
  switch (style) {
    case Style::kRows:
      specs[0] = first;
      break;
    case Style::kCols:
      specs[tensor_rank - 1] = last;
      break;
    case Style::kGrid:
      specs[0] = first;
      if (two) specs[tensor_rank - 1] = last;
      break;
    case Style::kTransposed:
      specs[0] = last;
      if (two) specs[tensor_rank - 1] = first;
      break;
    case Style::kReplicated:
      break;
  }
  return specs;
}

// The one place that spells out SaveTensor / RestoreTensor fields.
inline SaveTensor MakeSaveTensor(const TensorSpec& t, const Layout& layout,
                                 std::vector<const void*> data,
                                 std::string dataset = "") {
  return SaveTensor{t.key, std::move(dataset), t.dtype, t.shape, layout, std::move(data)};
}
inline RestoreTensor MakeRestoreTensor(const TensorSpec& t, const Layout& layout,
                                       std::vector<void*> data) {
  return RestoreTensor{t.key, t.dtype, t.shape, layout, std::move(data)};
}

// Every rank's status (code and message), indexed by rank. Collective.
struct RankStatus {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
};
inline std::vector<RankStatus> StatusesOfAllRanks(Communicator& comm,
                                                  const absl::Status& s) {
  const std::vector<std::string> all =
      comm.AllGather(absl::StrCat(static_cast<int>(s.code()), "|", s.message()));
  std::vector<RankStatus> out;
  for (const std::string& a : all) {
    const size_t bar = a.find('|');
    RankStatus r;
    int code = -1;
    if (!absl::SimpleAtoi(absl::string_view(a).substr(0, bar), &code)) code = -1;
    r.code = static_cast<absl::StatusCode>(code);
    r.message = a.substr(bar + 1);
    out.push_back(std::move(r));
  }
  return out;
}

// "" when every rank returned the same code and message as this rank, else a
// description of who differs.
inline std::string DescribeStatusDisagreement(Communicator& comm,
                                              const absl::Status& mine) {
  const std::vector<RankStatus> all = StatusesOfAllRanks(comm, mine);
  std::string out;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].code != mine.code() || all[r].message != mine.message()) {
      absl::StrAppend(&out, "rank ", r, " returned ",
                      absl::StatusCodeToString(all[r].code), ": ", all[r].message, "\n");
    }
  }
  if (!out.empty()) {
    absl::StrAppend(&out, "but rank ", comm.rank(), " returned ", mine.ToString(), "\n");
  }
  return out;
}

// The sum of every rank's `value`, on every rank. Collective.
inline int64_t SumOverRanks(Communicator& comm, int64_t value) {
  int64_t sum = 0;
  for (const std::string& bytes : comm.AllGather(
           std::string(reinterpret_cast<const char*>(&value), sizeof(value)))) {
    int64_t v = 0;
    std::memcpy(&v, bytes.data(), sizeof(v));
    sum += v;
  }
  return sum;
}

}  // namespace test
}  // namespace meshckpt

#endif  // MESHCKPT_MPI_TESTS_TEST_TENSORS_H_
