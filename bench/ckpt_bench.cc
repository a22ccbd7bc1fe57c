// Checkpoint save/restore against the raw-disk limit, measured in the same
// run. Run under mpirun; everything is collective.
//
// Usage, modes and flags: kUsage below (`ckpt_bench --help`). Within a
// mode ours and raw alternate, who goes first swapping every rep. The page
// cache is dropped before every timed operation when possible (root);
// otherwise results say "warm". Every restore is checked bit-exactly
// (bench/workload.h); a wrong value or a failed call exits 1. Timings are
// reported, never judged by the exit code.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/async_bench.h"
#include "bench/bench_config.h"
#include "bench/bench_util.h"
#include "bench/metadata_bench.h"
#include "bench/report.h"
#include "bench/rewrite_bench.h"
#include "bench/workload.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/restore_reads.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt::bench {
namespace {

std::string MeshText(const Mesh& mesh) {
  std::vector<std::string> dims;
  for (const MeshDimension& d : mesh.dims())
    dims.push_back(absl::StrCat(d.name, "=", d.size));
  return absl::StrJoin(dims, ";");
}

std::vector<ConstSegment> AsConst(const std::vector<Segment>& segments) {
  std::vector<ConstSegment> out;
  for (const Segment& s : segments) out.push_back({s.data, s.bytes});
  return out;
}

// The sum of every rank's `value`, on every rank; collective. Communicator
// has no sum of its own: nothing in the library needs one.
int64_t SumOverRanks(Communicator& comm, int64_t value) {
  int64_t sum = 0;
  for (const std::string& bytes : comm.AllGather(
           std::string(reinterpret_cast<const char*>(&value), sizeof(value)))) {
    int64_t v = 0;
    std::memcpy(&v, bytes.data(), sizeof(v));
    sum += v;
  }
  return sum;
}

// One timed operation with its untimed preparation and check.
struct Op {
  std::function<absl::Status()> prepare = [] { return absl::OkStatus(); };
  std::function<absl::Status()> run;
  std::function<absl::Status()> check = [] { return absl::OkStatus(); };
};

class Bench {
 public:
  Bench(Communicator& comm, Config config, Mesh mesh)
      : comm_(comm),
        c_(std::move(config)),
        mesh_(std::move(mesh)),
        model_(c_.quick ? TinyGpt() : Gpt2Small()) {}

  absl::Status Run() {
    MESHCKPT_RETURN_IF_ERROR(Setup());
    for (const std::string& m : c_.modes) {
      if (m == "io") MESHCKPT_RETURN_IF_ERROR(RunIo());
      if (m == "tensors") MESHCKPT_RETURN_IF_ERROR(RunTensors());
      if (m == "save-only") MESHCKPT_RETURN_IF_ERROR(RunSaveOnly());
      if (m == "reshard") MESHCKPT_RETURN_IF_ERROR(RunReshard());
      if (m == "read-once") MESHCKPT_RETURN_IF_ERROR(RunReadOnce());
      if (m == "metadata") MESHCKPT_RETURN_IF_ERROR(RunMetadata());
      if (m == "async") MESHCKPT_RETURN_IF_ERROR(RunAsync());
      if (m == "rewrite") MESHCKPT_RETURN_IF_ERROR(RunRewrite());
    }
    return absl::OkStatus();
  }

 private:
  bool root() const { return comm_.rank() == 0; }
  std::string Path(absl::string_view name) const {
    return absl::StrCat(c_.dir, "/", name);
  }
  std::string RankPath(absl::string_view name) const {
    return absl::StrCat(c_.dir, "/", name, "-", comm_.rank());
  }

  absl::Status Setup() {
    absl::Status local;
    if (root()) {
      std::error_code ec;
      std::filesystem::create_directories(c_.dir, ec);
      if (!c_.keep.empty()) {
        std::filesystem::create_directories(std::filesystem::path(c_.keep).parent_path(),
                                            ec);
      }
      if (ec) local = absl::InternalError(absl::StrCat("mkdir: ", ec.message()));
    }
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(local));
    std::string why = "--cache=warm";
    if (!c_.warm) {
      absl::Status dropped = root() ? DropPageCache() : absl::OkStatus();
      cold_ = BroadcastValue(comm_, dropped.ok(), 0);
      why = std::string(dropped.message());
    }
    if (root()) {
      std::printf("ckpt_bench: %d ranks, %lld devices, mesh %s, %d reps, page cache %s\n",
                  comm_.size(), static_cast<long long>(mesh_.num_devices()),
                  MeshText(mesh_).c_str(), c_.reps,
                  cold_ ? "cold (dropped before every timed operation)"
                        : absl::StrCat("WARM: not dropped (", why, ")").c_str());
      std::fflush(stdout);
    }
    return absl::OkStatus();
  }

  // Collective. A failure after a successful first drop makes the rest of
  // the run (and its rows) warm rather than failing it.
  void DropCaches() {
    if (!cold_) return;
    comm_.Barrier();
    cold_ = BroadcastValue(comm_, !root() || DropPageCache().ok(), 0);
  }

  // Runs `ours` and `raw` reps times each, alternating who goes first.
  // Fills the timings and peak memory (max over ranks and reps) of `r`.
  absl::Status Alternate(const Op& ours, const Op& raw, Result* r) {
    std::vector<double> t_ours, t_raw;
    int64_t peak_kib = 0, start_kib = 0;
    PeakMemory memory;
    for (int rep = 0; rep < c_.reps; ++rep) {
      for (int k = 0; k < 2; ++k) {
        const bool is_ours = (k == 0) == (rep % 2 == 1);
        const Op& op = is_ours ? ours : raw;
        MESHCKPT_RETURN_IF_ERROR(comm_.Agree(op.prepare()));
        DropCaches();
        if (is_ours) {
          start_kib = std::max(start_kib, CurrentRssKiB());
          memory.Start();
        }
        comm_.Barrier();
        const double t0 = NowSeconds();
        MESHCKPT_RETURN_IF_ERROR(comm_.Agree(op.run()));
        const double dt = NowSeconds() - t0;
        if (is_ours) peak_kib = std::max(peak_kib, memory.Stop());
        (is_ours ? t_ours : t_raw).push_back(dt);
        MESHCKPT_RETURN_IF_ERROR(comm_.Agree(op.check()));
      }
    }
    Describe(r);
    r->ours = Summarize(t_ours);
    r->raw = Summarize(t_raw);
    r->peak_extra_mib =
        comm_.AllReduceMax(std::max<int64_t>(0, peak_kib - baseline_kib_)) / 1024.0;
    r->start_extra_mib =
        comm_.AllReduceMax(std::max<int64_t>(0, start_kib - baseline_kib_)) / 1024.0;
    r->mem_method = memory.method();
    return absl::OkStatus();
  }

  // The fields of `r` that say which job ran.
  void Describe(Result* r) const {
    r->suite = c_.suite;
    r->ranks = comm_.size();
    r->devices = static_cast<int>(mesh_.num_devices());
    r->mesh = MeshText(mesh_);
    if (r->saved_ranks == 0) {
      r->saved_ranks = r->ranks;
      r->saved_mesh = r->mesh;
    }
    r->reps = c_.reps;
    r->cold = cold_;
  }

  absl::Status Report(Result r, const Workload& w) {
    r.workload = workload_name_;
    r.tensors = w.num_tensors();
    r.largest_shard_mib = comm_.AllReduceMax(w.largest_local_shard_bytes()) / 1048576.0;
    absl::Status s;
    if (root()) {
      std::printf("%s", HumanLines(r).c_str());
      std::fflush(stdout);
      if (!c_.csv.empty()) s = AppendCsv(c_.csv, r);
    }
    return comm_.Agree(s);
  }

  absl::StatusOr<Workload> MakeWorkload(std::vector<TensorSpec> specs, std::string name,
                                        absl::string_view detail) {
    absl::StatusOr<Workload> w = Workload::Create(std::move(specs), mesh_);
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(w.status()));
    baseline_kib_ = CurrentRssKiB();  // The model's buffers are filled.
    workload_name_ = std::move(name);
    if (root()) {
      std::printf(" %s (%s): %lld tensors, %.3f GB, largest local shard %.1f MiB\n",
                  workload_name_.c_str(), std::string(detail).c_str(),
                  static_cast<long long>(w->num_tensors()), w->model_bytes() / 1e9,
                  w->largest_local_shard_bytes() / 1048576.0);
      std::fflush(stdout);
    }
    return w;
  }

  absl::StatusOr<Workload> MakeModel() {
    return MakeWorkload(GptTensors(model_), model_.name,
                        absl::StrFormat("d_model %d, %d layers, vocab %d, + Adam slot",
                                        model_.d_model, model_.layers, model_.vocab));
  }

  absl::Status RemoveCheckpoint(const std::string& prefix) {
    if (!root()) return absl::OkStatus();
    MESHCKPT_RETURN_IF_ERROR(RemoveFileIfExists(IndexFilePath(prefix)));
    return RemoveFileIfExists(DataFilePath(prefix));
  }

  // Save vs raw write, then restore (same layout) vs raw read, of `w`.
  absl::Status SaveAndRestore(const std::string& mode, Workload& w) {
    const std::string prefix = Path(mode + "-ckpt");
    const std::string raw_w = RankPath(mode + "-raw-write"),
                      raw_r = RankPath(mode + "-raw-read");
    const std::vector<SaveTensor> saves = w.SaveList();
    const std::vector<ConstSegment> writes = w.WriteSegments();
    int64_t reported = -1;  // This rank's bytes as SaveTensors counts them.
    IoOptions options;
    options.progress = [&](int64_t, int64_t total) { reported = total; };
    Op ours{[&] { return RemoveCheckpoint(prefix); },
            [&] { return SaveTensors(comm_, prefix, saves, {}, options); }};
    Op raw{[&] { return RemoveFileIfExists(raw_w); },
           [&] { return RawWrite(raw_w, writes); }};
    Result save;
    save.mode = mode;
    save.op = "save";
    save.bytes = SumOverRanks(comm_, TotalBytes(writes));
    MESHCKPT_RETURN_IF_ERROR(Alternate(ours, raw, &save));
    if (reported >= 0 && reported != TotalBytes(writes)) {
      std::fprintf(stderr,
                   "ckpt_bench: rank %d: SaveTensors wrote %lld bytes, the raw baseline "
                   "%lld: the writer rule in Workload::WriteSegments is out of date\n",
                   comm_.rank(), static_cast<long long>(reported),
                   static_cast<long long>(TotalBytes(writes)));
    }
    MESHCKPT_RETURN_IF_ERROR(Report(save, w));
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RemoveFileIfExists(raw_w)));

    const std::vector<Segment> reads = w.ReadSegments();
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RawWrite(raw_r, AsConst(reads))));
    Result restore;
    restore.mode = mode;
    restore.op = "restore";
    restore.bytes = SumOverRanks(comm_, TotalBytes(reads));
    MESHCKPT_RETURN_IF_ERROR(
        Alternate(RestoreOp(w, prefix), ReadOp(raw_r, reads), &restore));
    MESHCKPT_RETURN_IF_ERROR(Report(restore, w));
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RemoveFileIfExists(raw_r)));
    return comm_.Agree(RemoveCheckpoint(prefix));
  }

  // Poison, RestoreTensors, check every value.
  Op RestoreOp(Workload& w, const std::string& prefix) {
    auto restores = std::make_shared<std::vector<RestoreTensor>>(w.RestoreList());
    return Op{[&w] {
                w.Poison();
                return absl::OkStatus();
              },
              [this, restores, prefix] {
                IoOptions options;
                options.transfer_mode = c_.restore_transfer;
                return RestoreTensors(comm_, prefix, *restores, options);
              },
              [&w] { return w.Verify(); }};
  }

  static Op ReadOp(const std::string& path, const std::vector<Segment>& reads) {
    return Op{[] { return absl::OkStatus(); },
              [path, &reads] { return RawRead(path, reads); }};
  }

  absl::Status RunIo() {
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    return SaveAndRestore("io", w);
  }

  absl::Status RunTensors() {
    MESHCKPT_ASSIGN_OR_RETURN(
        Workload w,
        MakeWorkload(SmallTensors(c_.tensors, 256, c_.split_tensors),
                     c_.split_tensors ? "small-split" : "small-replicated",
                     absl::StrCat(c_.tensors, " x 1 KiB float32, ",
                                  c_.split_tensors ? "split over model" : "replicated")));
    return SaveAndRestore("tensors", w);
  }

  // The async save's stall against a memcpy, and its time until durable
  // against a synchronous save; its checkpoint is then restored and checked.
  absl::Status RunAsync() {
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    const std::string prefix = Path("async-ckpt");
    MESHCKPT_ASSIGN_OR_RETURN(AsyncTimes t,
                              MeasureAsyncSave(comm_, prefix, w, c_.reps, [&] {
                                const absl::Status s = RemoveCheckpoint(prefix);
                                DropCaches();
                                return s;
                              }));
    Op check = RestoreOp(w, prefix);
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(check.prepare()));
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(check.run()));
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(check.check()));
    const int64_t bytes = SumOverRanks(comm_, TotalBytes(w.WriteSegments()));
    for (auto [op, ours, raw] : {std::tuple{"stall", t.stall, t.memcpy},
                                 std::tuple{"durable", t.durable, t.sync}}) {
      Result r;
      r.mode = "async";
      r.op = op;
      r.bytes = bytes;
      Describe(&r);
      r.ours = ours;
      r.raw = raw;
      MESHCKPT_RETURN_IF_ERROR(Report(r, w));
    }
    if (root()) {
      std::printf("          first async save's stall (staging allocated) %.3f s\n",
                  t.first_stall);
    }
    return comm_.Agree(RemoveCheckpoint(prefix));
  }

  absl::Status RunSaveOnly() {
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    CheckpointContents options;
    options.user_metadata = {{"bench.model", model_.name},
                             {"bench.ranks", absl::StrCat(comm_.size())},
                             {"bench.mesh", MeshText(mesh_)}};
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RemoveCheckpoint(c_.keep)));
    DropCaches();
    comm_.Barrier();
    const double t0 = NowSeconds();
    MESHCKPT_RETURN_IF_ERROR(SaveTensors(comm_, c_.keep, w.SaveList(), options, {}));
    if (root()) {
      std::printf("  save-only %.3f GB of %s to %s in %.3f s (not a comparison)\n",
                  w.model_bytes() / 1e9, model_.name.c_str(), c_.keep.c_str(),
                  NowSeconds() - t0);
    }
    return absl::OkStatus();
  }

  // The saved job of --from (a save-only checkpoint) into `r`.
  absl::Status DescribeSource(Result* r) {
    MESHCKPT_ASSIGN_OR_RETURN(IndexRecord index, ReadCheckpointIndex(comm_, c_.from));
    const auto& meta = index.user_metadata;
    auto model = meta.find("bench.model");
    auto ranks = meta.find("bench.ranks");
    if (model == meta.end() || model->second != model_.name || ranks == meta.end() ||
        !absl::SimpleAtoi(ranks->second, &r->saved_ranks)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", c_.from, "' was not saved by `ckpt_bench --mode=save-only` with the ",
          model_.name, " model", c_.quick ? " (--quick)" : ""));
    }
    if (auto m = meta.find("bench.mesh"); m != meta.end()) r->saved_mesh = m->second;
    return absl::OkStatus();
  }

  // The offline reshard of --from onto this job's mesh (RewriteCheckpoint)
  // against each rank reading its share of the bytes and writing them to a
  // new file; the result is restored and checked after every rep.
  absl::Status RunRewrite() {
    Result r;
    r.mode = "rewrite";
    r.op = "reshard";
    MESHCKPT_RETURN_IF_ERROR(DescribeSource(&r));
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    const std::string dst = Path("rewrite-ckpt"), raw = RankPath("rewrite-raw");
    r.bytes = w.model_bytes();
    Op ours{[&] { return RemoveCheckpoint(dst); },
            [&] { return RewriteOnce(comm_, c_.from, dst, w); },
            [&] {
              Op restore = RestoreOp(w, dst);
              MESHCKPT_RETURN_IF_ERROR(restore.prepare());
              MESHCKPT_RETURN_IF_ERROR(comm_.Agree(restore.run()));
              return restore.check();
            }};
    Op copy{[&] { return RemoveFileIfExists(raw); },
            [&] {
              return RawCopyShare(comm_.rank(), comm_.size(), DataFilePath(c_.from), raw,
                                  r.bytes);
            }};
    MESHCKPT_RETURN_IF_ERROR(Alternate(ours, copy, &r));
    MESHCKPT_RETURN_IF_ERROR(Report(r, w));
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RemoveFileIfExists(raw)));
    return comm_.Agree(RemoveCheckpoint(dst));
  }

  absl::Status RunReshard() {
    Result r;
    r.mode = "reshard";
    r.op = "restore";
    MESHCKPT_RETURN_IF_ERROR(DescribeSource(&r));
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    const std::string raw_r = RankPath("reshard-raw-read");
    const std::vector<Segment> reads = w.ReadSegments();
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RawWrite(raw_r, AsConst(reads))));
    r.bytes = SumOverRanks(comm_, TotalBytes(reads));
    MESHCKPT_RETURN_IF_ERROR(Alternate(RestoreOp(w, c_.from), ReadOp(raw_r, reads), &r));
    MESHCKPT_RETURN_IF_ERROR(Report(r, w));
    return comm_.Agree(RemoveFileIfExists(raw_r));
  }

  absl::Status RunMetadata() {
    MESHCKPT_ASSIGN_OR_RETURN(
        Workload w, MakeWorkload(SmallTensors(c_.tensors, 256, c_.split_tensors),
                                 c_.split_tensors ? "small-split" : "small-replicated",
                                 absl::StrCat(c_.tensors, " x 1 KiB float32")));
    return RunMetadataBench(comm_, Path("meta-ckpt"), w, c_.reps, c_.quick);
  }

  // --from restored with each shared shard read once, and read by every
  // rank holding it, against the raw pread of each rank's bytes: the three
  // alternate, each rep starting with the next. Checked like every restore.
  absl::Status RunReadOnce() {
    MESHCKPT_ASSIGN_OR_RETURN(Workload w, MakeModel());
    const std::string raw_r = RankPath("readonce-raw-read");
    const std::vector<Segment> reads = w.ReadSegments();
    MESHCKPT_RETURN_IF_ERROR(comm_.Agree(RawWrite(raw_r, AsConst(reads))));
    const std::vector<RestoreTensor> restores = w.RestoreList();
    const ShardReads policy[2] = {ShardReads::kOnce, ShardReads::kEveryHolder};
    std::vector<double> times[3];
    RestoreStats stats[2];
    for (int rep = 0; rep < c_.reps; ++rep) {
      for (int k = 0; k < 3; ++k) {
        const int which = (k + rep) % 3;
        if (which < 2) w.Poison();
        DropCaches();
        comm_.Barrier();
        const double t0 = NowSeconds();
        absl::Status s;
        if (which < 2) {
          IoOptions options;
          options.transfer_mode = c_.restore_transfer;
          absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
              CheckpointHandle::Open(comm_, c_.from, options);
          s = h.ok()
                  ? RestoreTensors(**h, restores, options, &stats[which], policy[which])
                  : h.status();
        } else {
          s = RawRead(raw_r, reads);
        }
        MESHCKPT_RETURN_IF_ERROR(comm_.Agree(s));
        times[which].push_back(NowSeconds() - t0);
        if (which < 2) MESHCKPT_RETURN_IF_ERROR(comm_.Agree(w.Verify()));
      }
    }
    const Stats raw = Summarize(times[2]);
    const char* names[2] = {"read once", "every holder"};
    for (int i = 0; i < 2; ++i) {
      const Stats t = Summarize(times[i]);
      const int64_t disk = SumOverRanks(comm_, stats[i].disk_bytes);
      const int64_t sent = SumOverRanks(comm_, stats[i].received_bytes);
      const int64_t delivered = SumOverRanks(comm_, stats[i].delivered_bytes);
      if (root()) {
        std::printf(
            "  read-once %-12s %d ranks, mesh %s: %.3f s, raw %.3f s, ratio (raw/ours) "
            "%.2f; "
            "from disk %.1f MB, received %.1f MB, delivered %.1f MB (%.2f x disk)\n",
            names[i], comm_.size(), MeshText(mesh_).c_str(), t.median, raw.median,
            raw.median / t.median, disk / 1e6, sent / 1e6, delivered / 1e6,
            static_cast<double>(delivered) / std::max<int64_t>(1, disk));
        std::fflush(stdout);
      }
    }
    return comm_.Agree(RemoveFileIfExists(raw_r));
  }

  Communicator& comm_;
  const Config c_;
  const Mesh mesh_;
  const ModelConfig model_;
  std::string workload_name_;
  bool cold_ = false;
  int64_t baseline_kib_ = 0;
};

// Errors leave every rank with the same status (Communicator::Agree), so
// only rank 0 (or any rank, before there is a communicator) prints them.
absl::Status Main(int argc, char** argv, int* rank) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, MpiCommunicator::World());
  *rank = comm->rank();
  MESHCKPT_ASSIGN_OR_RETURN(Config config, ParseConfig(argc, argv, comm->size()));
  if (config.help) {
    if (comm->rank() == 0) std::printf("%s", kUsage);
    return absl::OkStatus();
  }
  std::vector<MeshDimension> dims = {{kModelDim, config.devices}};
  if (config.mesh2d) {
    if (config.devices % config.data != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mesh=2d: ", config.devices,
                       " devices do not split into data=", config.data));
    }
    dims = {{"data", config.data}, {kModelDim, config.devices / config.data}};
  }
  MESHCKPT_ASSIGN_OR_RETURN(Mesh mesh, Mesh::Create(dims, comm->rank(), comm->size()));
  return Bench(*comm, std::move(config), std::move(mesh)).Run();
}

}  // namespace
}  // namespace meshckpt::bench

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  int rank = -1;
  absl::Status s = meshckpt::bench::Main(argc, argv, &rank);
  if (!s.ok() && rank <= 0)
    std::fprintf(stderr, "ckpt_bench: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}
