// Benchmark models: tensors, layouts and deterministic values.
#include "bench/workload.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt::bench {
namespace {

constexpr int64_t kFloatBytes = 4;

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// splitmix64's finalizer: every input bit reaches every output bit.
inline uint32_t ValueBits(uint64_t seed, int64_t index) {
  uint64_t z = seed + static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return 0x3f800000u | static_cast<uint32_t>(z >> 41);  // [1, 2)
}

// Calls fn(global index, index in the box's buffer, count) for each
// innermost row of `box` inside a tensor of `shape`.
template <typename F>
void ForEachRow(const Box& box, const std::vector<int64_t>& shape, F fn) {
  if (box.empty()) return;
  const int r = box.rank();
  if (r == 0) {
    fn(0, 0, 1);
    return;
  }
  const int64_t row = box.shape()[r - 1];
  std::vector<int64_t> at(r - 1, 0);
  for (int64_t local = 0;; local += row) {
    int64_t g = 0;
    for (int d = 0; d < r - 1; ++d) g = g * shape[d] + box.origin()[d] + at[d];
    fn(g * shape[r - 1] + box.origin()[r - 1], local, row);
    int d = r - 2;
    for (; d >= 0; --d) {
      if (++at[d] < box.shape()[d]) break;
      at[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace

ModelConfig Gpt2Small() { return {"gpt2-small", 50257, 1024, 768, 12}; }
ModelConfig TinyGpt() { return {"tiny-gpt", 1000, 128, 64, 2}; }

std::vector<TensorSpec> GptTensors(const ModelConfig& c) {
  const int64_t d = c.d_model;
  std::vector<TensorSpec> params = {
      {"model/wte", {c.vocab, d}, 0},
      {"model/wpe", {c.context, d}, -1},
  };
  for (int64_t l = 0; l < c.layers; ++l) {
    const std::string h = absl::StrCat("model/h", l, "/");
    std::vector<TensorSpec> layer = {
        {h + "ln_1/g", {d}, -1},           {h + "ln_1/b", {d}, -1},
        {h + "attn/qkv/w", {d, 3 * d}, 1}, {h + "attn/qkv/b", {3 * d}, -1},
        {h + "attn/proj/w", {d, d}, 0},    {h + "attn/proj/b", {d}, -1},
        {h + "ln_2/g", {d}, -1},           {h + "ln_2/b", {d}, -1},
        {h + "mlp/fc/w", {d, 4 * d}, 1},   {h + "mlp/fc/b", {4 * d}, -1},
        {h + "mlp/proj/w", {4 * d, d}, 0}, {h + "mlp/proj/b", {d}, -1},
    };
    params.insert(params.end(), layer.begin(), layer.end());
  }
  params.push_back({"model/ln_f/g", {d}, -1});
  params.push_back({"model/ln_f/b", {d}, -1});
  std::vector<TensorSpec> all = params;
  for (const TensorSpec& p : params) {
    all.push_back({"adam/m/" + p.key.substr(p.key.find('/') + 1), p.shape, p.split_dim});
  }
  return all;
}

std::vector<TensorSpec> SmallTensors(int64_t count, int64_t elements, bool split) {
  std::vector<TensorSpec> specs;
  specs.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    specs.push_back({absl::StrFormat("small/%05d", i), {elements}, split ? 0 : -1});
  }
  return specs;
}

Workload::Workload(Mesh mesh, std::vector<Tensor> tensors)
    : mesh_(std::move(mesh)), tensors_(std::move(tensors)) {
  for (const Tensor& t : tensors_) {
    model_bytes_ += t.map.global_box().num_elements() * kFloatBytes;
    for (int64_t n : t.device_elements) {
      largest_shard_ = std::max(largest_shard_, n * kFloatBytes);
    }
  }
}

absl::StatusOr<Workload> Workload::Create(std::vector<TensorSpec> specs,
                                          const Mesh& mesh) {
  std::vector<Tensor> tensors;
  tensors.reserve(specs.size());
  for (TensorSpec& spec : specs) {
    const int rank = static_cast<int>(spec.shape.size());
    Layout layout = Layout::Replicated(mesh, rank);
    if (spec.split_dim >= 0) {
      MESHCKPT_ASSIGN_OR_RETURN(
          layout, Layout::ShardedAlong(mesh, rank, spec.split_dim, kModelDim));
    }
    MESHCKPT_ASSIGN_OR_RETURN(ShardMap map, ShardMap::Create(layout, spec.shape));
    const uint64_t seed = Fnv1a(spec.key);
    Tensor t{std::move(spec), seed, std::move(map), {}, {}};
    for (int64_t device : mesh.local_device_ids()) {
      const int64_t n = t.map.DeviceBox(device).num_elements();
      // Uninitialized: Fill() is the first touch, so pages are not zeroed twice.
      t.device_data.emplace_back(new float[std::max<int64_t>(n, 1)]);
      t.device_elements.push_back(n);
    }
    tensors.push_back(std::move(t));
  }
  Workload w(mesh, std::move(tensors));
  w.Fill();
  return w;
}

void Workload::Fill() {
  const std::vector<int64_t> local = mesh_.local_device_ids();
  for (Tensor& t : tensors_) {
    for (size_t i = 0; i < local.size(); ++i) {
      uint32_t* out = reinterpret_cast<uint32_t*>(t.device_data[i].get());
      ForEachRow(t.map.DeviceBox(local[i]), t.spec.shape,
                 [&](int64_t g, int64_t at, int64_t n) {
                   for (int64_t j = 0; j < n; ++j) out[at + j] = ValueBits(t.seed, g + j);
                 });
    }
  }
}

void Workload::Poison() {
  for (Tensor& t : tensors_) {
    for (size_t i = 0; i < t.device_data.size(); ++i) {
      std::memset(t.device_data[i].get(), 0xff, t.device_elements[i] * kFloatBytes);
    }
  }
}

absl::Status Workload::Verify() const {
  const std::vector<int64_t> local = mesh_.local_device_ids();
  for (const Tensor& t : tensors_) {
    for (size_t i = 0; i < local.size(); ++i) {
      const uint32_t* in = reinterpret_cast<const uint32_t*>(t.device_data[i].get());
      int64_t bad_global = -1;
      uint32_t got = 0, want = 0;
      ForEachRow(t.map.DeviceBox(local[i]), t.spec.shape,
                 [&](int64_t g, int64_t at, int64_t n) {
                   if (bad_global >= 0) return;
                   for (int64_t j = 0; j < n; ++j) {
                     if (in[at + j] != ValueBits(t.seed, g + j)) {
                       bad_global = g + j;
                       got = in[at + j];
                       want = ValueBits(t.seed, g + j);
                       return;
                     }
                   }
                 });
      if (bad_global >= 0) {
        return absl::DataLossError(absl::StrFormat(
            "tensor '%s', rank %d, device %d: element %d (global row-major index) "
            "is 0x%08x, expected 0x%08x",
            t.spec.key, mesh_.rank(), local[i], bad_global, got, want));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<SaveTensor> Workload::SaveList() const {
  std::vector<SaveTensor> out;
  out.reserve(tensors_.size());
  for (const Tensor& t : tensors_) {
    SaveTensor s{t.spec.key, "", DType::kFloat32, t.spec.shape, t.map.layout(), {}};
    for (const auto& b : t.device_data) s.device_data.push_back(b.get());
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<RestoreTensor> Workload::RestoreList() const {
  std::vector<RestoreTensor> out;
  out.reserve(tensors_.size());
  for (const Tensor& t : tensors_) {
    RestoreTensor r{t.spec.key, DType::kFloat32, t.spec.shape, t.map.layout(), {}};
    for (const auto& b : t.device_data) r.device_data.push_back(b.get());
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<ConstSegment> Workload::WriteSegments() const {
  std::vector<const Tensor*> order;
  for (const Tensor& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const Tensor* a, const Tensor* b) { return a->spec.key < b->spec.key; });
  const int64_t first = mesh_.rank() * mesh_.devices_per_rank();
  WriterAssigner assigner(mesh_.num_ranks());
  std::vector<ConstSegment> out;
  for (const Tensor* t : order) {
    for (const ShardWriter& w : assigner.Assign(t->map, kFloatBytes)) {
      if (w.rank != mesh_.rank()) continue;
      out.push_back(
          {t->device_data[w.device - first].get(), w.box.num_elements() * kFloatBytes});
    }
  }
  return out;
}

std::vector<Segment> Workload::ReadSegments() const {
  const std::vector<int64_t> local = mesh_.local_device_ids();
  std::vector<Segment> out;
  for (const Tensor& t : tensors_) {
    absl::flat_hash_set<int64_t> seen;
    for (size_t i = 0; i < local.size(); ++i) {
      if (t.device_elements[i] == 0) continue;
      if (!seen.insert(t.map.ShardOfDevice(local[i])).second) continue;
      out.push_back({t.device_data[i].get(), t.device_elements[i] * kFloatBytes});
    }
  }
  return out;
}

}  // namespace meshckpt::bench
