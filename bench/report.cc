// Benchmark results: CSV rows and the ratio lines of the log.
#include "bench/report.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace meshckpt::bench {
namespace {

double Gbps(int64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0;
}

// Target ratio for the headline, 0 when there is none.
double RatioTarget(const Result& r) {
  if (r.mode == "reshard") return 0.8;
  if (r.mode == "io") return 0.9;
  if (r.mode == "async" && r.op == "stall") return 1 / 1.5;  // Stall <= 1.5x memcpy.
  return 0;
}

const char* Met(bool ok) { return ok ? "met" : "MISSED"; }

}  // namespace

std::string CsvHeader() {
  return "suite,workload,mode,op,ranks,devices,mesh,saved_ranks,saved_mesh,tensors,bytes,"
         "reps,cache,ours_median_s,ours_min_s,ours_max_s,raw_median_s,raw_min_s,"
         "raw_max_s,ratio,ours_gbps,raw_gbps,us_per_tensor,peak_extra_mib,"
         "start_extra_mib,largest_shard_mib,mem_method";
}

std::string CsvRow(const Result& r) {
  return absl::StrFormat(
      "%s,%s,%s,%s,%d,%d,%s,%d,%s,%d,%d,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,"
      "%.4f,%.4f,%.2f,%.2f,%.2f,%.2f,%s",
      r.suite, r.workload, r.mode, r.op, r.ranks, r.devices, r.mesh, r.saved_ranks,
      r.saved_mesh, r.tensors, r.bytes, r.reps, r.cold ? "cold" : "warm", r.ours.median,
      r.ours.min, r.ours.max, r.raw.median, r.raw.min, r.raw.max, r.ratio(),
      Gbps(r.bytes, r.ours.median), Gbps(r.bytes, r.raw.median),
      r.tensors > 0 ? r.ours.median / r.tensors * 1e6 : 0.0, r.peak_extra_mib,
      r.start_extra_mib, r.largest_shard_mib, r.mem_method);
}

absl::Status AppendCsv(const std::string& path, const Result& r) {
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot open CSV '", path, "': ", std::strerror(errno)));
  }
  std::string text;
  if (std::fseek(f, 0, SEEK_END) == 0 && std::ftell(f) == 0) text = CsvHeader() + "\n";
  text += CsvRow(r) + "\n";
  const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !wrote) {
    return absl::InternalError(absl::StrCat("cannot write CSV '", path, "'"));
  }
  return absl::OkStatus();
}

std::string HumanLines(const Result& r) {
  std::string from;
  if (r.mode == "reshard") {
    from = absl::StrFormat(" from %d ranks [%s]", r.saved_ranks, r.saved_mesh);
  }
  std::string out = absl::StrFormat(
      "  %-7s %-7s %.3f GB, %d tensors%s: ours %.3f s [%.3f..%.3f] %.2f GB/s | "
      "raw %.3f s [%.3f..%.3f] %.2f GB/s\n",
      r.mode, r.op, r.bytes / 1e9, r.tensors, from, r.ours.median, r.ours.min, r.ours.max,
      Gbps(r.bytes, r.ours.median), r.raw.median, r.raw.min, r.raw.max,
      Gbps(r.bytes, r.raw.median));
  const double target = RatioTarget(r);
  absl::StrAppendFormat(&out, "          ratio ours/raw %.2f", r.ratio());
  if (target > 0) {
    absl::StrAppendFormat(&out, " (target >= %.2f: %s)", target,
                          Met(r.ratio() >= target));
  }
  if (r.mode == "tensors") {
    const double us = r.ours.median / r.tensors * 1e6;
    absl::StrAppendFormat(&out, " | %.1f us/tensor (target <= 1000: %s)", us,
                          Met(us <= 1000));
  }
  if (r.mem_method.empty()) return out + "\n";  // Not measured (async).
  const bool mem_ok = r.peak_extra_mib <= 64 + r.largest_shard_mib;
  absl::StrAppendFormat(&out,
                        " | peak extra %.1f MiB (%.1f at start), largest shard "
                        "%.1f MiB (target <= 64 + shard: %s, %s)\n",
                        r.peak_extra_mib, r.start_extra_mib, r.largest_shard_mib,
                        Met(mem_ok), r.mem_method);
  return out;
}

}  // namespace meshckpt::bench
