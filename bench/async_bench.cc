// MeasureAsyncSave (async_bench.h).
#include "bench/async_bench.h"

#include <cstring>
#include <vector>

#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/async_save.h"

namespace meshckpt::bench {
namespace {

// Wall time of `f` on the slowest rank, barrier to barrier; collective.
absl::StatusOr<double> Timed(Communicator& comm, const std::function<absl::Status()>& f) {
  comm.Barrier();
  const double t0 = NowSeconds();
  const absl::Status s = f();
  const double dt = NowSeconds() - t0;
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(s));
  // Microseconds as an integer: AllReduceMax is what Communicator has.
  return comm.AllReduceMax(static_cast<int64_t>(dt * 1e6)) / 1e6;
}

}  // namespace

absl::StatusOr<AsyncTimes> MeasureAsyncSave(Communicator& comm, const std::string& prefix,
                                            const Workload& w, int reps,
                                            const std::function<absl::Status()>& prepare) {
  const std::vector<SaveTensor> saves = w.SaveList();
  const std::vector<ConstSegment> segments = w.WriteSegments();
  std::vector<char> copy(TotalBytes(segments));
  std::memset(copy.data(), 1, copy.size());  // Touched once, as staging is.
  AsyncSaver saver(&comm);

  auto async_save = [&] { return saver.Start(prefix, saves, {}, IoOptions()); };
  auto sync_save = [&] { return SaveTensors(comm, prefix, saves, {}, IoOptions()); };
  auto memcpy_all = [&] {
    char* out = copy.data();
    for (const ConstSegment& s : segments) {
      std::memcpy(out, s.data, s.bytes);
      out += s.bytes;
    }
    return absl::OkStatus();
  };

  AsyncTimes t;
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(prepare()));
  MESHCKPT_ASSIGN_OR_RETURN(t.first_stall, Timed(comm, async_save));
  MESHCKPT_RETURN_IF_ERROR(saver.Wait());
  std::vector<double> stall, mem, durable, sync;
  for (int rep = 0; rep < reps; ++rep) {
    for (int k = 0; k < 3; ++k) {
      switch ((k + rep) % 3) {
        case 0: {
          MESHCKPT_RETURN_IF_ERROR(comm.Agree(prepare()));
          MESHCKPT_ASSIGN_OR_RETURN(double s, Timed(comm, async_save));
          MESHCKPT_RETURN_IF_ERROR(saver.Wait());
          stall.push_back(s);
          durable.push_back(comm.AllReduceMax(static_cast<int64_t>(
                                saver.last_stats().durable_seconds * 1e6)) /
                            1e6);
          break;
        }
        case 1: {
          MESHCKPT_RETURN_IF_ERROR(comm.Agree(prepare()));
          MESHCKPT_ASSIGN_OR_RETURN(double s, Timed(comm, sync_save));
          sync.push_back(s);
          break;
        }
        default: {
          MESHCKPT_ASSIGN_OR_RETURN(double s, Timed(comm, memcpy_all));
          mem.push_back(s);
        }
      }
    }
  }
  // The async save goes last, so its checkpoint is the one left.
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(prepare()));
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(async_save()));
  MESHCKPT_RETURN_IF_ERROR(saver.Wait());
  t.stall = Summarize(stall);
  t.memcpy = Summarize(mem);
  t.durable = Summarize(durable);
  t.sync = Summarize(sync);
  return t;
}

}  // namespace meshckpt::bench
