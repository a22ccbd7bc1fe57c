// ckpt_bench's command line (bench_config.h).
#include "bench/bench_config.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt::bench {
namespace {

absl::StatusOr<int64_t> IntFlag(const std::map<std::string, std::string>& f,
                                const std::string& name, int64_t fallback) {
  auto it = f.find(name);
  if (it == f.end()) return fallback;
  int64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v) || v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", it->second, " is not a non-negative integer"));
  }
  return v;
}

}  // namespace

absl::StatusOr<Config> ParseConfig(int argc, char** argv, int ranks) {
  MESHCKPT_ASSIGN_OR_RETURN(
      auto f, ParseFlags(argc, argv,
                         {"help", "mode", "quick", "reps", "devices", "mesh", "data",
                          "dir", "csv", "suite", "keep", "from", "tensors",
                          "tensor-layout", "cache", "restore-transfer"}));
  Config c;
  c.help = f.count("help") > 0;
  c.quick = f.count("quick") > 0;
  if (c.quick) c.tensors = 200;
  if (f.count("mode")) c.modes = absl::StrSplit(f["mode"], ',');
  for (const std::string& m : c.modes) {
    if (m != "io" && m != "tensors" && m != "save-only" && m != "reshard" &&
        m != "read-once" && m != "metadata" && m != "async" && m != "rewrite") {
      return absl::InvalidArgumentError(absl::StrCat("unknown mode '", m, "'"));
    }
  }
  MESHCKPT_ASSIGN_OR_RETURN(int64_t reps, IntFlag(f, "reps", c.quick ? 1 : 3));
  MESHCKPT_ASSIGN_OR_RETURN(int64_t devices, IntFlag(f, "devices", ranks));
  MESHCKPT_ASSIGN_OR_RETURN(int64_t data, IntFlag(f, "data", 2));
  MESHCKPT_ASSIGN_OR_RETURN(c.tensors, IntFlag(f, "tensors", c.tensors));
  c.reps = std::max<int64_t>(1, reps);
  c.devices = static_cast<int>(devices);
  c.data = static_cast<int>(std::max<int64_t>(1, data));
  if (f.count("mesh") && f["mesh"] != "1d" && f["mesh"] != "2d") {
    return absl::InvalidArgumentError("--mesh must be 1d or 2d");
  }
  c.mesh2d = f["mesh"] == "2d";
  if (f.count("tensor-layout") && f["tensor-layout"] != "replicated" &&
      f["tensor-layout"] != "split") {
    return absl::InvalidArgumentError("--tensor-layout must be replicated or split");
  }
  c.split_tensors = f["tensor-layout"] == "split";
  if (f.count("cache") && f["cache"] != "auto" && f["cache"] != "warm") {
    return absl::InvalidArgumentError("--cache must be auto or warm");
  }
  c.warm = f["cache"] == "warm";
  if (f.count("restore-transfer")) {
    const std::string& t = f["restore-transfer"];
    if (t == "independent") {
      c.restore_transfer = TransferMode::kIndependent;
    } else if (t != "direct") {
      return absl::InvalidArgumentError(
          "--restore-transfer must be direct or independent");
    }
  }
  for (auto [name, out] : {std::pair{"dir", &c.dir},
                           {"csv", &c.csv},
                           {"suite", &c.suite},
                           {"keep", &c.keep},
                           {"from", &c.from}}) {
    if (f.count(name)) *out = f[name];
  }
  for (const std::string& m : c.modes) {
    if (m == "save-only" && c.keep.empty()) {
      return absl::InvalidArgumentError("--mode=save-only needs --keep=PREFIX");
    }
    if ((m == "reshard" || m == "read-once" || m == "rewrite") && c.from.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mode=", m, " needs --from=PREFIX"));
    }
  }
  return c;
}

const char kUsage[] = R"(usage: mpirun -np N ckpt_bench [flags]
  mpirun -np 4 ckpt_bench                    io + tensors, GPT-2 small + Adam (~1 GB)
  mpirun -np 2 ckpt_bench --devices=8        4 mesh devices per rank
  mpirun -np 4 ckpt_bench --mode=save-only --keep=/tmp/b/ckpt4
  mpirun -np 3 ckpt_bench --mode=reshard --from=/tmp/b/ckpt4 [--mesh=2d]
  mpirun -np 2 ckpt_bench --mode=async       async save stall vs memcpy, sync save
  mpirun -np 3 ckpt_bench --mode=rewrite --from=/tmp/b/ckpt4 [--mesh=2d]
modes (--mode=a,b,...; default io,tensors):
  io         durable SaveTensors vs raw pwrite+fsync of the same bytes per rank;
             RestoreTensors onto the same layout vs raw pread of the same bytes
  tensors    the same for --tensors=N (10000) float32 tensors of 1 KiB
  save-only  one save to --keep=PREFIX, for a later reshard run
  reshard    RestoreTensors of --from=PREFIX (saved by another job) onto this
             job's mesh vs raw pread of the bytes each rank must read
  read-once  RestoreTensors of --from=PREFIX with each shard several ranks
             need read once and sent (the default) vs read by every rank
             holding it, vs raw pread; prints bytes read from the file and
             delivered, summed over ranks (not in the CSV)
  metadata   --tensors=N float32 tensors of 1 KiB (--tensor-layout): save time,
             index size, index broadcast alone and the whole collective index
             read (max over ranks), restore
  async      AsyncSaver on the model: the stall (Start) vs a memcpy of each
             rank's bytes, and the time until durable vs a synchronous save
  rewrite    offline reshard (RewriteCheckpoint, `meshckpt reshard`) of
             --from=PREFIX onto this job's mesh vs each rank reading its share
             of the bytes and writing them to a new file with fsync
flags: --reps=N (3)  --devices=D (ranks)  --mesh=1d|2d (2d: data=--data=K (2)
  x model=D/K)  --dir=DIR (/tmp/meshckpt_bench)  --csv=FILE (append rows,
  schema in bench/report.h)  --suite=LABEL  --tensor-layout=replicated|split
  --cache=auto|warm  --quick (tiny model, 1 rep, 200 tensors)
  --restore-transfer=direct|independent (IoOptions::transfer_mode)
)";

}  // namespace meshckpt::bench
