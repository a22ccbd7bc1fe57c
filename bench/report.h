// One benchmark result, as a human-readable line and as a CSV row.
//
// CSV schema (header written when the file is new or empty; one row per
// measured operation; times in seconds; sizes in bytes unless named MiB):
//   suite         free label of the run (--suite), e.g. "standard", "quick"
//   workload      gpt2-small | tiny-gpt | small-replicated | small-split
//   mode          io | reshard | tensors | async
//   op            save | restore; for async: stall (ours: AsyncSaver::Start
//                 as the caller sees it; raw: a memcpy of the same bytes per
//                 rank) and durable (ours: from Start to the commit; raw: a
//                 synchronous SaveTensors)
//   ranks, devices, mesh        the job doing `op`; mesh like "model=4" or
//                               "data=2;model=2"
//   saved_ranks, saved_mesh     the job that wrote the checkpoint read by a
//                               restore (equal to the above unless resharding)
//   tensors       tensors in the checkpoint
//   bytes         bytes moved by all ranks together (save: each distinct
//                 shard once; restore: each rank's distinct local shards)
//   reps, cache   repetitions; "cold" (page cache dropped before every timed
//                 operation) or "warm"
//   ours_*_s      SaveTensors / RestoreTensors, barrier to completion
//   raw_*_s       the raw baseline on the same bytes per rank (pwrite+fsync
//                 or pread), alternated with ours
//   ratio         raw_median_s / ours_median_s: our throughput as a fraction
//                 of the disk's (1.0 = as fast as raw; the headline figure)
//   ours_gbps, raw_gbps   bytes / median, 1e9 bytes per second
//   us_per_tensor ours_median_s / tensors, in microseconds
//   peak_extra_mib  highest resident memory during `op` above the rank's
//                 RSS once the model's buffers were filled, max over ranks
//                 and reps
//   start_extra_mib  the same at the start of `op`: memory earlier
//                 operations left behind (peak minus this is what `op` itself
//                 allocated, roughly)
//   largest_shard_mib  the largest single local device buffer, max over ranks
//   mem_method    hwm (VmHWM reset via clear_refs) or sampled (1 ms VmRSS);
//                 empty when memory was not measured (async: staging holds
//                 the rank's state by design)
#ifndef MESHCKPT_BENCH_REPORT_H_
#define MESHCKPT_BENCH_REPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bench/bench_util.h"

namespace meshckpt::bench {

struct Result {
  std::string suite, workload, mode, op;
  int ranks = 0, devices = 0;
  std::string mesh;
  int saved_ranks = 0;
  std::string saved_mesh;
  int64_t tensors = 0, bytes = 0;
  int reps = 0;
  bool cold = false;
  Stats ours, raw;
  double peak_extra_mib = 0, start_extra_mib = 0, largest_shard_mib = 0;
  std::string mem_method;

  double ratio() const { return ours.median > 0 ? raw.median / ours.median : 0; }
};

std::string CsvHeader();
std::string CsvRow(const Result& r);
// Appends the row, writing the header first when the file is new or empty.
absl::Status AppendCsv(const std::string& path, const Result& r);
// Two indented lines for the log, with the performance targets (ratio >= 0.9
// for save and restore, >= 0.8 for a reshard, async stall <= 1.5x memcpy;
// <= 1 ms per tensor; extra
// memory <= 64 MiB + largest shard) marked met or MISSED. Never fails.
std::string HumanLines(const Result& r);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_REPORT_H_
