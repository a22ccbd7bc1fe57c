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

}  // namespace

absl::Status RunMetadataBench(Communicator& comm, const std::string& prefix, Workload& w,
                              int reps) {
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
  const double restore =
      Timed(comm, [&] { s = RestoreTensors(comm, prefix, w.RestoreList(), IoOptions()); });
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
    (void)RemoveFileIfExists(IndexFilePath(prefix));
    (void)RemoveFileIfExists(DataFilePath(prefix));
  }
  return comm.Agree(absl::OkStatus());
}

}  // namespace meshckpt::bench
