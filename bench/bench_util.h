// Measurement plumbing for the benchmarks: clocks, summaries, the page
// cache, resident memory and the raw-disk baselines.
//
// Nothing here knows about checkpoints; ckpt_bench.cc combines it with a
// Workload. Functions are thread-compatible; PeakMemory owns a thread only
// when it must sample (see below).
#ifndef MESHCKPT_BENCH_BENCH_UTIL_H_
#define MESHCKPT_BENCH_BENCH_UTIL_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshckpt::bench {

// Monotonic seconds.
double NowSeconds();

struct Stats {
  double median = 0, min = 0, max = 0;
};
// Median (mean of the middle two for an even count), min and max; zeros for
// an empty input.
Stats Summarize(std::vector<double> samples);

// sync(2), then drops the page cache, dentries and inodes system-wide.
// PermissionDenied when /proc/sys/vm/drop_caches is not writable (not root,
// or a container that hides it): reads that follow are warm.
absl::Status DropPageCache();

// Resident set size of this process (VmRSS), in KiB; 0 if unreadable.
int64_t CurrentRssKiB();

// Highest resident set size between Start() and Stop(). Resets the kernel's
// high-water mark (VmHWM) by writing "5" to /proc/self/clear_refs when
// allowed, which costs nothing while the measured code runs; otherwise
// samples VmRSS every millisecond from a thread, which can miss spikes
// shorter than that.
class PeakMemory {
 public:
  // `force_sampling`: sample even where VmHWM could be reset (for tests).
  explicit PeakMemory(bool force_sampling = false) : force_sampling_(force_sampling) {}
  ~PeakMemory();
  PeakMemory(const PeakMemory&) = delete;
  PeakMemory& operator=(const PeakMemory&) = delete;

  void Start();
  // Peak VmRSS in KiB since Start().
  int64_t Stop();
  // "hwm" or "sampled": how the last Start() measures.
  const char* method() const { return sampling_ ? "sampled" : "hwm"; }

 private:
  const bool force_sampling_;
  bool sampling_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_{0};
  std::thread sampler_;
};

// A run of bytes in memory, written to or read from consecutive file offsets.
struct ConstSegment {
  const void* data;
  int64_t bytes;
};
struct Segment {
  void* data;
  int64_t bytes;
};
int64_t TotalBytes(absl::Span<const ConstSegment> segments);
int64_t TotalBytes(absl::Span<const Segment> segments);

// The raw-disk write: creates `path` (truncating it), pwrites the segments
// back to back in calls of at most 64 MiB, fsyncs and closes.
absl::Status RawWrite(const std::string& path, absl::Span<const ConstSegment> segments);
// The raw-disk read: preads the segments back to back from `path` in calls
// of at most 64 MiB. DataLoss if the file is shorter.
absl::Status RawRead(const std::string& path, absl::Span<const Segment> segments);

// `--name=value` and bare `--name` (value "true") flags. Everything else,
// and any flag not in `known`, is InvalidArgument.
absl::StatusOr<std::map<std::string, std::string>> ParseFlags(
    int argc, char** argv, const std::vector<std::string>& known);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_BENCH_UTIL_H_
