// Metadata costs at many tensors and ranks (metadata_bench.h).
#include "bench/metadata_bench.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/reshard_plan.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt::bench {
namespace {

// Seconds of `fn` on the slowest rank: each rank's own time, maxed.
template <typename Fn>
double Timed(Communicator& comm, Fn&& fn) {
  comm.Barrier();
  const double t0 = NowSeconds();
  fn();
  const double dt = NowSeconds() - t0;
  return comm.AllReduceMax(static_cast<int64_t>(dt * 1e9)) / 1e9;
}

// The save's writer choice and the restore's reader choice for `tensors`
// tensors, replicated (one shard, `ranks` holders) and split (`ranks`
// shards, one holder each), on a mesh of `ranks` ranks, computed as one rank of
// them would (in this process, without those ranks): seconds per plan.
void PrintPlanCost(int64_t tensors, int ranks) {
  const Mesh mesh = Mesh::Create({{"x", ranks}}, 0, ranks).value();
  const Layout replicated = Layout::Create({"unsharded"}, mesh).value();
  const Layout split = Layout::Create({"x"}, mesh).value();
  for (const Layout* layout : {&replicated, &split}) {
    const ShardMap map = ShardMap::Create(*layout, {int64_t{4} * ranks}).value();
    double t0 = NowSeconds();
    WriterAssigner writers(ranks);
    for (int64_t t = 0; t < tensors; ++t) writers.Assign(map, 4);
    const double save = NowSeconds() - t0;
    t0 = NowSeconds();
    ReaderAssigner readers(ranks);
    for (int64_t t = 0; t < tensors; ++t) readers.Assign(map, 4);
    const double restore = NowSeconds() - t0;
    std::printf(
        "  plan for %lld %s tensors on %d ranks, on one rank: save %.3f s, restore "
        "%.3f s (%.0f ns per shard and holder)\n",
        static_cast<long long>(tensors), layout == &split ? "split" : "replicated", ranks,
        save, restore, restore * 1e9 / static_cast<double>(tensors) / ranks);
  }
}

}  // namespace

absl::Status RunMetadataBench(Communicator& comm, const std::string& prefix, Workload& w,
                              int reps, bool quick) {
  if (comm.rank() == 0) {
    MESHCKPT_RETURN_IF_ERROR(RemoveFileIfExists(IndexFilePath(prefix)));
    MESHCKPT_RETURN_IF_ERROR(RemoveFileIfExists(DataFilePath(prefix)));
  }
  comm.Barrier();
  absl::Status s;
  const double save =
      Timed(comm, [&] { s = SaveTensors(comm, prefix, w.SaveList(), {}, IoOptions()); });
  MESHCKPT_RETURN_IF_ERROR(s);

  std::string index_bytes;
  if (comm.rank() == 0) {
    std::ifstream in(IndexFilePath(prefix), std::ios::binary);
    index_bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const int64_t index_size = BroadcastValue(comm, int64_t(index_bytes.size()), 0);
  std::vector<double> bcast, read;
  for (int r = 0; r < reps; ++r) {
    std::string copy = comm.rank() == 0 ? index_bytes : std::string();
    bcast.push_back(Timed(comm, [&] { comm.Broadcast(&copy, 0); }));
    if (static_cast<int64_t>(copy.size()) != index_size) {
      return absl::InternalError("index broadcast lost bytes");
    }
    read.push_back(Timed(comm, [&] {
      absl::StatusOr<CheckpointIndex> index = CheckpointIndex::Read(comm, prefix);
      s = index.status();
    }));
    MESHCKPT_RETURN_IF_ERROR(comm.Agree(s));
  }
  w.Poison();
  const double restore = Timed(
      comm, [&] { s = RestoreTensors(comm, prefix, w.RestoreList(), IoOptions()); });
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(s));
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(w.Verify()));
  if (comm.rank() == 0) {
    std::printf(
        "  metadata %d ranks, %lld tensors: save %.3f s, index %.1f KiB (%.0f B/tensor), "
        "index broadcast %.2f ms, index read+decode+validate %.2f ms, restore %.3f s\n",
        comm.size(), static_cast<long long>(w.num_tensors()), save, index_size / 1024.0,
        static_cast<double>(index_size) / std::max<int64_t>(1, w.num_tensors()),
        Summarize(bcast).median * 1e3, Summarize(read).median * 1e3, restore);
    std::fflush(stdout);
    if (quick) {
      PrintPlanCost(10, 1024);
    } else {
      for (int ranks : {1024, 16384}) PrintPlanCost(1000, ranks);
    }
    (void)RemoveFileIfExists(IndexFilePath(prefix));
    (void)RemoveFileIfExists(DataFilePath(prefix));
  }
  return comm.Agree(absl::OkStatus());
}

}  // namespace meshckpt::bench
