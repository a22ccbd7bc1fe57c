// A save's chunks, from the plan into the chunk sink.
#include "meshckpt/checkpoint/engine/save_data.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"

namespace meshckpt::internal {
namespace {

int64_t TotalBytes(int rank, const std::vector<PlannedTensor>& plan) {
  int64_t total = 0;
  for (const PlannedTensor& p : plan) {
    for (const ShardWriter& w : p.writers) {
      if (w.rank == rank) total += w.box.num_elements() * p.element_size;
    }
  }
  return total;
}

}  // namespace

std::vector<SinkDataset> SinkDatasetsOf(int rank,
                                        const std::vector<PlannedTensor>& plan) {
  std::vector<SinkDataset> datasets(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    datasets[i].spec = DatasetSpecOf(p);
    datasets[i].chunks.reserve(p.writers.size());
    for (const ShardWriter& w : p.writers) {
      datasets[i].chunks.push_back(
          {w.rank, w.box, w.rank == rank ? WriterData(p, w) : nullptr});
    }
  }
  return datasets;
}

absl::Status WriteMyChunks(int rank, const std::vector<PlannedTensor>& plan,
                           ChunkSink& sink, const IoOptions& io) {
  const int64_t total = TotalBytes(rank, plan);
  int64_t done = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;  // Strings went in with the file.
    for (size_t c = 0; c < p.writers.size(); ++c) {
      const ShardWriter& w = p.writers[c];
      if (w.rank != rank) continue;
      if (absl::Status s = sink.Write(i, c); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("tensor '", p.tensor->key, "', chunk ",
                                                   w.box.ToString(), ": ", s.message()));
      }
      if (w.box.empty()) continue;
      MESHCKPT_FAULT_POINT("during_data_write", rank);
      done += w.box.num_elements() * p.element_size;
      if (io.progress) io.progress(done, total);
    }
  }
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
