// Benchmark workloads: which tensors, how they are laid out on the mesh, and
// this rank's buffers filled with values a restore can be checked against.
//
// The GPT-2 workload follows Megatron-style tensor parallelism over the mesh
// dimension "model": column-parallel matrices (attn qkv, mlp fc) split on
// dim 1, row-parallel ones (attn proj, mlp proj) on dim 0, the token
// embedding on dim 0 (vocab); biases, layer norms and the position
// embedding replicated (Megatron keeps position embeddings whole). Every
// parameter has one Adam slot of the same shape and layout. Any other mesh
// dimension (e.g. "data" of a 2-D mesh) replicates everything.
//
// Values: element i (global row-major index) of a tensor is a float in
// [1, 2) whose mantissa is a hash of (key, i), so they are independent of
// the layout, rank count and process that wrote them, and a misplaced,
// stale or missing element is caught bit-exactly. Poison() fills with
// 0xFF bytes (a NaN the generator never makes).
//
// Thread-compatible. Buffers do not move when a Workload is moved.
#ifndef MESHCKPT_BENCH_WORKLOAD_H_
#define MESHCKPT_BENCH_WORKLOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/bench_util.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt::bench {

inline constexpr char kModelDim[] = "model";

struct TensorSpec {
  std::string key;
  std::vector<int64_t> shape;
  int split_dim = -1;  // Split over kModelDim; -1: replicated.
};

struct ModelConfig {
  std::string name;
  int64_t vocab = 0, context = 0, d_model = 0, layers = 0;
};
// vocab 50257, context 1024, d_model 768, 12 layers: 124.4M parameters,
// with the Adam slots about 1 GB of float32.
ModelConfig Gpt2Small();
// vocab 1000, context 128, d_model 64, 2 layers: about 1 MB, for smoke runs.
ModelConfig TinyGpt();

// Parameters under "model/...", their slots under "adam/m/...".
std::vector<TensorSpec> GptTensors(const ModelConfig& config);
// `count` tensors "small/NNNNN" of `elements` float32 each, split over
// kModelDim on dim 0 or replicated.
std::vector<TensorSpec> SmallTensors(int64_t count, int64_t elements, bool split);

class Workload {
 public:
  // Allocates this rank's buffers (one per tensor and local device of
  // `mesh`, which must have a dimension kModelDim) and fills them.
  static absl::StatusOr<Workload> Create(std::vector<TensorSpec> specs, const Mesh& mesh);

  int64_t num_tensors() const { return static_cast<int64_t>(tensors_.size()); }
  // Bytes of the whole model, each distinct element once.
  int64_t model_bytes() const { return model_bytes_; }
  // The largest buffer of one local device.
  int64_t largest_local_shard_bytes() const { return largest_shard_; }

  void Fill();
  void Poison();
  // DataLoss naming the first wrong element (tensor, device, index, bits).
  absl::Status Verify() const;

  std::vector<SaveTensor> SaveList() const;
  std::vector<RestoreTensor> RestoreList() const;

  // The shards this rank writes in a save, in the order SaveTensors writes
  // them: tensors by key, writers chosen by WriterAssigner
  // (layout/shard_map.h). The raw-write baseline writes exactly these.
  std::vector<ConstSegment> WriteSegments() const;
  // Each distinct shard this rank's devices hold, read once: what a restore
  // onto this layout must read at least. The raw-read baseline reads these.
  std::vector<Segment> ReadSegments() const;

 private:
  struct Tensor {
    TensorSpec spec;
    uint64_t seed;
    ShardMap map;
    std::vector<std::unique_ptr<float[]>> device_data;  // Per local device.
    std::vector<int64_t> device_elements;
  };

  Workload(Mesh mesh, std::vector<Tensor> tensors);

  Mesh mesh_;
  std::vector<Tensor> tensors_;
  int64_t model_bytes_ = 0;
  int64_t largest_shard_ = 0;
};

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_WORKLOAD_H_
