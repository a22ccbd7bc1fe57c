// Save/restore throughput against the raw disk, measured in the same run.
//
//   mpirun -np N io_bench [--mb=1024] [--tensors=8] [--split=rows|cols]
//                         [--restore-split=rows|cols] [--reps=3]
//                         [--mode=direct|independent|collective]
//                         [--tile-kb=N] [--no-verify] [--keep] [--rank-peaks]
//                         [--dir=/tmp/meshckpt_bench]
//   mpirun -np 4 io_bench --phase=save ...     (keeps the checkpoint)
//   mpirun -np 3 io_bench --phase=restore ...  (restores it on 3 ranks)
//   mpirun -np N io_bench --small=10000 [--small-bytes=1024]
//                         [--small-layout=replicated|sharded]
//
// Bulk mode: float32 [rows, 4096] tensors adding up to --mb MiB, split by
// rows or columns over a 1-D mesh of all ranks. Per repetition (even ones
// raw side first, odd ones ours first; old files removed and synced,
// untimed, before each write): raw write (each rank pwrites the bytes it
// would save to its own file in 64 MiB calls, fsyncs), durable SaveTensors,
// raw read of the raw files, RestoreTensors. The restore uses
// --restore-split (default: the save's split); a different one, or
// --phase=restore on another number of ranks, is a resharding restore, and
// the raw read then reads as many bytes as this rank restores. Page caches
// are dropped before reads when /proc/sys/vm/drop_caches is writable
// (root); otherwise reads are warm and the report says so.
//
// Small mode (--small=N): N float32 tensors of --small-bytes each; reports
// the time per tensor of save and of restore.
//
// Both modes report the peak resident memory above what the process held
// before the operation (VmHWM after resetting it via /proc/self/clear_refs;
// "n/a" when that is not possible), the maximum over ranks. Timings are
// medians with [min, max]; ratios are ours/raw throughput, from the medians
// and (paired) the median of per-repetition ratios; reports, never asserts. MESHCKPT_TRACE=1 adds
// every rank's phase times (base/phase_trace.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "checkpoint/shard_io.h"
#include "comm/mpi_communicator.h"
#include "io/fs.h"
#include "layout/shard_map.h"

namespace meshckpt {
namespace {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool DropCaches() {
  ::sync();
  FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("3\n", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// kB from /proc/self/status, -1 when unknown.
int64_t StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) {
      int64_t kb = -1;
      std::string num;
      for (char c : line) {
        if (c >= '0' && c <= '9') num += c;
      }
      (void)absl::SimpleAtoi(num, &kb);
      return kb;
    }
  }
  return -1;
}

// User + system CPU seconds of this process (all threads). MPI waits
// inside an operation spin, so imbalance shows up here too.
double CpuSeconds() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// The block device holding `dir`: milliseconds it had I/O in flight (field
// 10 of /sys/dev/block/M:m/stat; the whole disk when `dir` is on a
// partition; -1 when unknown) and sectors read and written. Compared with wall time it says whether an operation kept
// the disk busy.
struct DiskStat {
  int64_t busy_ms = -1, read_sectors = 0, write_sectors = 0;
};
DiskStat ReadDiskStat(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return {};
  const std::string base =
      absl::StrCat("/sys/dev/block/", major(st.st_dev), ":", minor(st.st_dev));
  for (const std::string& p : {base + "/stat", base + "/../stat"}) {
    std::ifstream in(p);
    int64_t v[11];
    bool ok = true;
    for (int64_t& x : v) ok = ok && static_cast<bool>(in >> x);
    if (ok) return {v[9], v[2], v[6]};
  }
  return {};
}

// Resets VmHWM to the current RSS; false when the kernel refuses.
bool ResetPeak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

void RawWrite(const std::string& path, const std::vector<char>& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (size_t off = 0; off < data.size();) {
    const size_t n = std::min<size_t>(64 << 20, data.size() - off);
    off += ::pwrite(fd, data.data() + off, n, off);
  }
  ::fsync(fd);
  ::close(fd);
}

void RawRead(const std::string& path, std::vector<char>* data) {
  int fd = ::open(path.c_str(), O_RDONLY);
  for (size_t off = 0; off < data->size();) {
    const size_t n = std::min<size_t>(64 << 20, data->size() - off);
    const ssize_t got = ::pread(fd, data->data() + off, n, off);
    if (got <= 0) break;
    off += got;
  }
  ::close(fd);
}

struct Stats {
  double median, min, max;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

const char* ModeName(TransferMode m) {
  return m == TransferMode::kDirect ? "direct"
         : m == TransferMode::kIndependent ? "independent" : "collective";
}

// Median over repetitions of raw[i] / ours[i]: each pair ran back to back,
// so slow drifts of the machine's load cancel.
double PairedRatio(const std::vector<double>& raw, const std::vector<double>& ours) {
  std::vector<double> r;
  for (size_t i = 0; i < raw.size() && i < ours.size(); ++i) r.push_back(raw[i] / ours[i]);
  return r.empty() ? 0 : Summarize(r).median;
}

struct Flags {
  int64_t mb = 1024, tensors = 8, reps = 3, small = 0, small_bytes = 1024;
  std::string split = "rows", restore_split, small_layout = "replicated";
  std::string dir = "/tmp/meshckpt_bench";
  TransferMode mode = TransferMode::kDirect;
  bool keep = false;  // Leave the files behind (for filefrag, h5dump, ...).
  // all: save then restore in one job; save: only the writes, keeping the
  // checkpoint; restore: only the reads of a checkpoint an earlier job
  // saved (possibly on another number of ranks).
  std::string phase = "all";
  bool verify = true;  // --no-verify: restore without checking checksums.
  bool rank_peaks = false;  // --rank-peaks: every rank's peak memory, disk stats.

  int64_t tile_kb = 0;  // --tile-kb: checksum tile target (0: default).

  SaveOptions save() const {
    SaveOptions o;
    o.transfer_mode = mode;
    if (tile_kb > 0) o.checksum_tile_bytes = tile_kb << 10;
    return o;
  }
  RestoreOptions restore() const {
    RestoreOptions o;
    o.transfer_mode = mode;
    o.verify_checksums = verify;
    return o;
  }
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto val = [&](absl::string_view flag) -> const char* {
      return absl::StartsWith(a, flag) ? argv[i] + flag.size() : nullptr;
    };
    if (auto v = val("--mb=")) (void)absl::SimpleAtoi(v, &f.mb);
    else if (auto v = val("--tensors=")) (void)absl::SimpleAtoi(v, &f.tensors);
    else if (auto v = val("--reps=")) (void)absl::SimpleAtoi(v, &f.reps);
    else if (auto v = val("--small=")) (void)absl::SimpleAtoi(v, &f.small);
    else if (auto v = val("--small-bytes=")) (void)absl::SimpleAtoi(v, &f.small_bytes);
    else if (auto v = val("--small-layout=")) f.small_layout = v;
    else if (auto v = val("--split=")) f.split = v;
    else if (auto v = val("--restore-split=")) f.restore_split = v;
    else if (auto v = val("--dir=")) f.dir = v;
    else if (a == "--keep") f.keep = true;
    else if (auto v = val("--phase=")) f.phase = v;
    else if (auto v = val("--tile-kb=")) (void)absl::SimpleAtoi(v, &f.tile_kb);
    else if (a == "--no-verify") f.verify = false;
    else if (a == "--rank-peaks") f.rank_peaks = true;
    else if (auto v = val("--mode=")) {
      const absl::string_view m = v;
      f.mode = m == "independent" ? TransferMode::kIndependent
               : m == "collective" ? TransferMode::kCollective
                                   : TransferMode::kDirect;
    }
  }
  if (f.restore_split.empty()) f.restore_split = f.split;
  return f;
}

Layout MakeLayout(const std::string& split, const Mesh& mesh, int rank) {
  std::vector<std::string> specs = {"unsharded", "unsharded"};
  if (split == "rows") specs[0] = "x";
  if (split == "cols") specs[1] = "x";
  return Layout::Create(specs, mesh).value();
}

class Bench {
 public:
  Bench(Communicator& comm, const Flags& flags) : comm_(comm), flags_(flags) {}

  // Runs fn between barriers; returns seconds and records the peak memory
  // above the RSS before the call (max over ranks).
  template <typename Fn>
  double Timed(Fn&& fn, int64_t* peak_extra_kb = nullptr, std::vector<double>* cpu = nullptr,
               std::vector<double>* busy = nullptr) {
    const bool reset = ResetPeak();
    const int64_t before = StatusKb("VmRSS:");
    const DiskStat disk0 = ReadDiskStat(flags_.dir);
    comm_.Barrier();
    const double t0 = Now();
    const double c0 = CpuSeconds();
    fn();
    const double c = CpuSeconds() - c0;
    comm_.Barrier();
    const double t = Now() - t0;
    const double all_cpu = static_cast<double>(comm_.AllReduceSum(static_cast<int64_t>(c * 1e6))) / 1e6;
    if (cpu != nullptr) cpu->push_back(all_cpu);
    const DiskStat disk1 = ReadDiskStat(flags_.dir);
    if (busy != nullptr && disk0.busy_ms >= 0 && disk1.busy_ms >= 0) {
      busy->push_back((disk1.busy_ms - disk0.busy_ms) / 1e3);
      if (flags_.rank_peaks && comm_.rank() == 0) {
        std::fprintf(stderr, "disk: busy %.3f s, read %.1f MiB, written %.1f MiB\n",
                     busy->back(), (disk1.read_sectors - disk0.read_sectors) / 2048.0,
                     (disk1.write_sectors - disk0.write_sectors) / 2048.0);
      }
    }
    const int64_t extra = reset ? StatusKb("VmHWM:") - before : -1;
    if (flags_.rank_peaks) {
      std::fprintf(stderr, "rank %d: peak extra %lld kB\n", comm_.rank(),
                   static_cast<long long>(extra));
    }
    const int64_t worst = comm_.AllReduceMax(extra);
    if (peak_extra_kb != nullptr) *peak_extra_kb = std::max(*peak_extra_kb, worst);
    return t;
  }

  void Drop() {
    comm_.Barrier();
    if (comm_.rank() == 0) cold_ &= DropCaches();
    comm_.Barrier();
  }

  // Removes the files a timed write would replace and syncs, untimed: the
  // cost of freeing (and discarding) an old file's blocks belongs to
  // neither side. Each rank removes the paths it is given.
  void Clear(const std::vector<std::string>& paths) {
    comm_.Barrier();
    for (const std::string& p : paths) (void)RemoveFileIfExists(p);
    ::sync();
    comm_.Barrier();
  }

  bool cold() const { return cold_; }

 private:
  Communicator& comm_;
  const Flags& flags_;
  bool cold_ = true;
};

std::string Mib(int64_t kb) {
  return kb < 0 ? std::string("n/a") : absl::StrCat(kb / 1024, " MiB");
}

void Check(const absl::Status& s, const char* what, int rank) {
  if (!s.ok() && rank == 0) std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
}

int RunBulk(Communicator& comm, const Flags& f) {
  const int rank = comm.rank(), size = comm.size();
  // float32 [rows, 4096] tensors adding up to `mb` MiB.
  const int64_t cols = 4096;
  const int64_t rows = std::max<int64_t>(1, (f.mb << 20) / f.tensors / 4 / cols);
  Mesh mesh = Mesh::Create({{"x", size}}, rank, size).value();
  Layout layout = MakeLayout(f.split, mesh, rank);
  Layout restore_layout = MakeLayout(f.restore_split, mesh, rank);
  ShardMap map = ShardMap::Create(layout, {rows, cols}).value();
  ShardMap restore_map = ShardMap::Create(restore_layout, {rows, cols}).value();
  const Box mine = map.DeviceBox(rank), back_box = restore_map.DeviceBox(rank);
  std::vector<std::vector<float>> data(f.tensors, std::vector<float>(mine.num_elements()));
  std::vector<std::vector<float>> expect(f.tensors, std::vector<float>(back_box.num_elements()));
  std::vector<std::vector<float>> back(f.tensors, std::vector<float>(back_box.num_elements()));
  auto value = [&](int64_t t, int64_t r, int64_t c) {
    return static_cast<float>(t * 1000003 + r * cols + c);
  };
  for (int64_t t = 0; t < f.tensors; ++t) {
    for (int64_t i = 0; i < mine.num_elements(); ++i) {
      data[t][i] = value(t, mine.origin()[0] + i / mine.shape()[1],
                         mine.origin()[1] + i % mine.shape()[1]);
    }
    for (int64_t i = 0; i < back_box.num_elements(); ++i) {
      expect[t][i] = value(t, back_box.origin()[0] + i / back_box.shape()[1],
                           back_box.origin()[1] + i % back_box.shape()[1]);
    }
  }
  std::vector<SaveTensor> save;
  std::vector<RestoreTensor> restore;
  for (int64_t t = 0; t < f.tensors; ++t) {
    const std::string key = absl::StrCat("layer", t, "/w");
    save.push_back({key, "", DType::kFloat32, {rows, cols}, layout, {data[t].data()}});
    restore.push_back({key, DType::kFloat32, {rows, cols}, restore_layout, {back[t].data()}});
  }
  const int64_t my_bytes = mine.num_elements() * 4 * f.tensors;
  const int64_t my_read = back_box.num_elements() * 4 * f.tensors;
  const double write_gb = static_cast<double>(comm.AllReduceSum(my_bytes)) / 1e9;
  const double read_gb = static_cast<double>(comm.AllReduceSum(my_read)) / 1e9;
  std::vector<char> raw(std::max(my_bytes, my_read), 1), raw_back(my_read);
  const std::string raw_path = absl::StrCat(f.dir, "/raw-", rank);
  const std::string prefix = absl::StrCat(f.dir, "/ckpt");

  Bench bench(comm, f);
  int64_t save_peak = -1, restore_peak = -1;
  std::vector<double> raw_w, save_t, raw_r, restore_t;
  std::vector<double> raw_w_cpu, save_cpu, raw_r_cpu, restore_cpu;
  std::vector<double> raw_w_busy, save_busy, raw_r_busy, restore_busy;
  // Even repetitions run the raw side first, odd ones ours first.
  for (int64_t r = 0; r < f.reps; ++r) {
    auto raw_write = [&] {
      bench.Clear({raw_path});
      raw_w.push_back(bench.Timed([&] { RawWrite(raw_path, raw); }, nullptr, &raw_w_cpu, &raw_w_busy));
    };
    auto save_ours = [&] {
      bench.Clear({DataFilePath(prefix), IndexFilePath(prefix)});
      save_t.push_back(bench.Timed(
          [&] { Check(SaveTensors(comm, prefix, save, f.save()), "save", rank); },
          &save_peak, &save_cpu, &save_busy));
    };
    auto raw_read = [&] {
      bench.Drop();
      raw_r.push_back(bench.Timed([&] { RawRead(raw_path, &raw_back); }, nullptr, &raw_r_cpu, &raw_r_busy));
    };
    auto restore_ours = [&] {
      bench.Drop();
      restore_t.push_back(bench.Timed(
          [&] { Check(RestoreTensors(comm, prefix, restore, f.restore()), "restore", rank); },
          &restore_peak, &restore_cpu, &restore_busy));
    };
    const bool writes = f.phase != "restore", reads = f.phase != "save";
    if (!writes && r == 0) {  // The raw side's files, untimed.
      bench.Clear({raw_path});
      RawWrite(raw_path, raw);
    }
    if (writes) {
      if (r % 2 == 0) raw_write(), save_ours();
      else save_ours(), raw_write();
    }
    if (reads) {
      if (r % 2 == 0) raw_read(), restore_ours();
      else restore_ours(), raw_read();
    }
  }
  const int64_t wrong = comm.AllReduceSum(f.phase != "save" && back != expect ? 1 : 0);
  if (wrong > 0 && rank == 0) {
    std::fprintf(stderr, "restore returned wrong values on %lld ranks\n",
                 static_cast<long long>(wrong));
  }
  if (rank == 0) {
    const Stats w = Summarize(raw_w), s = Summarize(save_t);
    const Stats rr = Summarize(raw_r), rs = Summarize(restore_t);
    (void)read_gb;
    std::printf("ranks=%d mode=%s split=%s restore-split=%s bytes=%.3fGB tensors=%lld reps=%lld caches=%s\n",
                size, ModeName(f.mode), f.split.c_str(), f.restore_split.c_str(), write_gb,
                static_cast<long long>(f.tensors), static_cast<long long>(f.reps),
                bench.cold() ? "dropped" : "warm (not root)");
    if (!raw_w.empty()) {
      std::printf("  raw write %.2f GB/s [%.2f-%.2f s] | save %.2f GB/s [%.2f-%.2f s] | save/raw %.2f (paired %.2f)\n",
                  write_gb / w.median, w.min, w.max, write_gb / s.median, s.min, s.max,
                  w.median / s.median, PairedRatio(raw_w, save_t));
    }
    if (!raw_r.empty()) {
      std::printf("  raw read  %.2f GB/s [%.2f-%.2f s] | restore %.2f GB/s [%.2f-%.2f s] | restore/raw %.2f (paired %.2f)\n",
                  read_gb / rr.median, rr.min, rr.max, read_gb / rs.median, rs.min, rs.max,
                  rr.median / rs.median, PairedRatio(raw_r, restore_t));
    }
    if (!raw_w.empty() || !raw_r.empty()) {
      std::printf("  cpu seconds (all ranks, median): raw write %.2f save %.2f | raw read %.2f restore %.2f\n",
                  Summarize(raw_w_cpu).median, Summarize(save_cpu).median,
                  Summarize(raw_r_cpu).median, Summarize(restore_cpu).median);
    }
    if (!raw_w_busy.empty() || !raw_r_busy.empty()) {
      std::printf("  disk busy seconds (median): raw write %.2f save %.2f | raw read %.2f restore %.2f\n",
                  Summarize(raw_w_busy).median, Summarize(save_busy).median,
                  Summarize(raw_r_busy).median, Summarize(restore_busy).median);
    }
    const int64_t shard_kb = std::max(my_bytes, my_read) / f.tensors / 1024;
    std::printf("  peak extra memory: save %s, restore %s (largest local shard %s)\n",
                Mib(save_peak).c_str(), Mib(restore_peak).c_str(), Mib(shard_kb).c_str());
  }
  if (!f.keep && f.phase == "all") (void)RemoveFileIfExists(raw_path);
  return 0;
}

int RunSmall(Communicator& comm, const Flags& f) {
  const int rank = comm.rank(), size = comm.size();
  const int64_t n = std::max<int64_t>(1, f.small_bytes / 4);
  Mesh mesh = Mesh::Create({{"x", size}}, rank, size).value();
  Layout layout = Layout::Create({f.small_layout == "sharded" ? "x" : "unsharded"}, mesh).value();
  ShardMap map = ShardMap::Create(layout, {n}).value();
  const int64_t local = map.DeviceBox(rank).num_elements();
  std::vector<std::vector<float>> data(f.small, std::vector<float>(local));
  std::vector<std::vector<float>> back(f.small, std::vector<float>(local));
  for (int64_t t = 0; t < f.small; ++t) {
    for (int64_t i = 0; i < local; ++i) data[t][i] = static_cast<float>(t + i);
  }
  std::vector<SaveTensor> save;
  std::vector<RestoreTensor> restore;
  for (int64_t t = 0; t < f.small; ++t) {
    const std::string key = absl::StrCat("block", t / 100, "/t", t);
    save.push_back({key, "", DType::kFloat32, {n}, layout, {data[t].data()}});
    restore.push_back({key, DType::kFloat32, {n}, layout, {back[t].data()}});
  }
  const std::string prefix = absl::StrCat(f.dir, "/small");
  Bench bench(comm, f);
  int64_t save_peak = -1, restore_peak = -1;
  std::vector<double> save_t, restore_t;
  for (int64_t r = 0; r < f.reps; ++r) {
    bench.Clear({DataFilePath(prefix), IndexFilePath(prefix)});
    save_t.push_back(bench.Timed(
        [&] { Check(SaveTensors(comm, prefix, save, f.save()), "save", rank); }, &save_peak));
    bench.Drop();
    restore_t.push_back(bench.Timed(
        [&] { Check(RestoreTensors(comm, prefix, restore, f.restore()), "restore", rank); },
        &restore_peak));
  }
  const int64_t wrong = comm.AllReduceSum(back != data ? 1 : 0);
  if (wrong > 0 && rank == 0) std::fprintf(stderr, "restore returned wrong values\n");
  if (rank == 0) {
    const Stats s = Summarize(save_t), r = Summarize(restore_t);
    std::printf("ranks=%d mode=%s small tensors=%lld x %lld B layout=%s reps=%lld caches=%s\n",
                size, ModeName(f.mode),
                static_cast<long long>(f.small), static_cast<long long>(n * 4),
                f.small_layout.c_str(), static_cast<long long>(f.reps),
                bench.cold() ? "dropped" : "warm (not root)");
    const double k = 1e6 / static_cast<double>(f.small);
    std::printf("  save    %.1f us/tensor [%.1f-%.1f] (%.2f s)\n", s.median * k,
                s.min * k, s.max * k, s.median);
    std::printf("  restore %.1f us/tensor [%.1f-%.1f] (%.2f s)\n", r.median * k,
                r.min * k, r.max * k, r.median);
    std::printf("  peak extra memory: save %s, restore %s\n", Mib(save_peak).c_str(),
                Mib(restore_peak).c_str());
  }
  return 0;
}

int Run(int argc, char** argv) {
  auto comm = MpiCommunicator::World().value();
  const Flags f = ParseFlags(argc, argv);
  if (comm->rank() == 0) (void)std::system(absl::StrCat("mkdir -p ", f.dir).c_str());
  comm->Barrier();
  const int rc = f.small > 0 ? RunSmall(*comm, f) : RunBulk(*comm, f);
  if (comm->rank() == 0 && !f.keep && f.phase == "all") {
    for (const char* name : {"/ckpt", "/small"}) {
      const std::string prefix = absl::StrCat(f.dir, name);
      (void)RemoveFileIfExists(DataFilePath(prefix));
      (void)RemoveFileIfExists(IndexFilePath(prefix));
    }
  }
  return rc;
}

}  // namespace
}  // namespace meshckpt

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  return meshckpt::Run(argc, argv);
}
