// AsyncSaver: a save that returns to the caller once every rank's data is
// in memory the save owns, and finishes on a background thread.
//
// Start runs on the caller's thread: it validates and plans (collective)
// and copies this rank's numeric chunks into staging memory (and its
// string chunks into memory of the save's own). A background thread per
// rank then creates the `.partial-<id>` file (rank 0, with every dataset),
// writes the chunks, fsyncs, and runs the commit of shard_io.h (agree,
// rename, index) and `after_commit` (the state file, retention) on its own
// communicator (Communicator::DuplicateForThread, hence
// MPI_THREAD_MULTIPLE). So a checkpoint is committed as soon as every
// rank's data is durable, with no help from the training loop, and a crash
// before that leaves what a crashed synchronous save leaves: the previous
// checkpoint and a temporary that the next start sweeps. Errors found
// while creating the file (a full disk: ResourceExhausted) therefore come
// back from Wait or the next Start, not from the Start that caused them.
//
// Staging memory is kept across saves and bounded by
// AsyncSaveOptions::staging_budget_bytes. When a rank's chunks do not all
// fit, the last ones (in write order) that fit are staged and the others
// are written from the caller's buffers while Start waits: the stall grows
// with the bytes that did not fit, and the save never fails for lack of
// staging.
//
// At most one save is in flight: Start and Wait first wait for the one
// before. Its status (the same on every rank: the background thread agrees
// on it) comes back from Wait or the next Start. The destructor waits too.
// IoOptions::progress is called on the background thread. Only
// TransferMode::kDirect saves asynchronously: the MPI-IO modes write
// through HDF5, which is built without thread safety in parallel builds.
//
//   AsyncSaver saver(&comm);
//   MESHCKPT_RETURN_IF_ERROR(saver.Start(prefix, tensors, contents, io));
//   ...tensors' buffers may change from here on...
//   MESHCKPT_RETURN_IF_ERROR(saver.Wait());
#ifndef MESHCKPT_CHECKPOINT_ENGINE_ASYNC_SAVE_H_
#define MESHCKPT_CHECKPOINT_ENGINE_ASYNC_SAVE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

struct AsyncSaveOptions {
  // Most bytes of staging memory per rank, kept between saves. The default
  // stages everything: the stall is about one memcpy of the rank's state.
  int64_t staging_budget_bytes = std::numeric_limits<int64_t>::max();
};

// What the last finished save measured on this rank.
struct AsyncSaveStats {
  double stall_seconds = 0;    // Start, as the caller saw it.
  double durable_seconds = 0;  // From Start's call to the end of after_commit.
  int64_t staged_bytes = 0;    // Copied into staging memory.
  int64_t streamed_bytes = 0;  // Written from the caller's buffers during Start.
  // Whether this save had to allocate staging memory (the first, or one
  // that needed more): touching new memory makes its stall longer.
  bool allocated_staging = false;
  // Whether the checkpoint exists (the index is in place), even if
  // after_commit then failed.
  bool committed = false;
};

class AsyncSaver {
 public:
  // Runs on every rank on the background thread once the checkpoint is
  // committed, with the background communicator; its statuses are agreed.
  using AfterCommit = std::function<absl::Status(Communicator& comm)>;

  // `comm` must outlive the saver.
  explicit AsyncSaver(Communicator* comm, AsyncSaveOptions options = {});
  // Waits for the save in flight; rank 0 prints its error, if any, to stderr.
  ~AsyncSaver();
  AsyncSaver(const AsyncSaver&) = delete;
  AsyncSaver& operator=(const AsyncSaver&) = delete;

  // Collective. Waits for the save in flight and returns its error if it
  // failed (starting nothing). Otherwise starts saving `tensors` to
  // `prefix` as SaveTensors would, and returns once their values are
  // staged or written: the buffers may change from then on. Errors of the
  // synchronous part (bad input, a missing directory) are returned here;
  // InvalidArgument for a transfer mode other than kDirect;
  // FailedPrecondition without MPI_THREAD_MULTIPLE.
  absl::Status Start(const std::string& prefix, absl::Span<const SaveTensor> tensors,
                     const CheckpointContents& contents, const IoOptions& io,
                     AfterCommit after_commit = nullptr);

  // Collective in effect (every rank must call it), without communication:
  // waits for the save in flight, if any, and returns its status; OK when
  // there is none.
  absl::Status Wait();

  // Whether a save was started and not yet waited for.
  bool in_flight() const { return thread_.joinable(); }
  // Whether the save in flight has finished on this rank (Wait will not
  // block); true when there is none. Not collective.
  bool finished() const;

  // Takes effect at the next Start; staging memory already allocated is
  // kept when it is within the new budget.
  void SetOptions(AsyncSaveOptions options) { options_ = options; }

  // Of the last save Wait collected.
  const AsyncSaveStats& last_stats() const { return last_stats_; }

 private:
  struct Job;
  void Run(Job* job);

  Communicator* comm_;
  AsyncSaveOptions options_;
  std::unique_ptr<Communicator> background_comm_;
  // Staging memory: grows to what a save needs (within the budget) and
  // is kept for the next.
  std::unique_ptr<char[]> staging_;
  int64_t staging_capacity_ = 0;
  std::unique_ptr<Job> job_;
  std::thread thread_;
  AsyncSaveStats last_stats_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_ASYNC_SAVE_H_
