// AsyncSaver (async_save.h): a save session begun on the caller's thread
// and written, fsynced and committed on a background one.
#include "meshckpt/checkpoint/engine/async_save.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/phase_trace.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/save_session.h"

namespace meshckpt {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Staged chunks start on cache-line boundaries.
constexpr int64_t kAlign = 64;
int64_t AlignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// A one-shot signal between the two threads.
class Latch {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void WaitOpen() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  bool is_open() {
    std::lock_guard<std::mutex> lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace

struct AsyncSaver::Job {
  std::unique_ptr<internal::SaveSession> session;
  AfterCommit after_commit;
  Clock::time_point start;
  // my_chunks()[0, first_staged) are written from the caller's buffers
  // while Start waits, then the rest from staging.
  size_t first_staged = 0;
  Latch streamed;  // The caller's buffers are no longer read.
  Latch staged;    // Staging holds its chunks.
  Latch finished;  // The background thread is done.
  std::deque<std::vector<std::string>> strings;  // This rank's string chunks.
  absl::Status status;
  AsyncSaveStats stats;
};

AsyncSaver::AsyncSaver(Communicator* comm, AsyncSaveOptions options)
    : comm_(comm), options_(options) {}

AsyncSaver::~AsyncSaver() {
  const absl::Status s = Wait();
  if (!s.ok() && comm_->rank() == 0) {
    std::fprintf(stderr, "meshckpt: async save failed: %s\n", s.ToString().c_str());
  }
}

bool AsyncSaver::finished() const { return job_ == nullptr || job_->finished.is_open(); }

absl::Status AsyncSaver::Wait() {
  if (!thread_.joinable()) return absl::OkStatus();
  thread_.join();
  last_stats_ = job_->stats;
  absl::Status s = std::move(job_->status);
  job_.reset();
  return s;
}

absl::Status AsyncSaver::Start(const std::string& prefix,
                               absl::Span<const SaveTensor> tensors,
                               const CheckpointContents& contents, const IoOptions& io,
                               AfterCommit after_commit) {
  const Clock::time_point start = Clock::now();
  PhaseTrace trace("async_start", comm_->rank());
  MESHCKPT_RETURN_IF_ERROR(Wait());
  absl::Status mode;
  if (io.transfer_mode != TransferMode::kDirect) {
    mode = absl::InvalidArgumentError(absl::StrCat(
        "async save of '", prefix,
        "' needs TransferMode::kDirect: the MPI-IO modes write through HDF5, which "
        "parallel builds make without thread safety"));
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(mode));
  if (background_comm_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Communicator>> dup = comm_->DuplicateForThread();
    if (!dup.ok()) {
      return absl::Status(dup.status().code(),
                          absl::StrCat("async save of '", prefix, "' on rank ",
                                       comm_->rank(), ": ", dup.status().message()));
    }
    background_comm_ = *std::move(dup);
  }

  // Stage the last chunks that fit in the budget, and every string.
  struct Copy {
    const void* from;
    char* to;
    int64_t bytes;
  };
  std::vector<Copy> copies;
  auto job = std::make_unique<Job>();
  auto redirect = [&](const std::vector<internal::SaveSession::MyChunk>& mine,
                      std::vector<SinkDataset>& datasets) {
    size_t first = mine.size();
    int64_t need = 0;
    while (first > 0 &&
           AlignUp(mine[first - 1].bytes) <= options_.staging_budget_bytes - need) {
      need += AlignUp(mine[--first].bytes);
    }
    if (staging_capacity_ > options_.staging_budget_bytes) {  // The budget shrank.
      staging_.reset();
      staging_capacity_ = 0;
    }
    if (need > staging_capacity_) {
      staging_.reset();  // Free the old block before taking the new one.
      staging_capacity_ = 0;
      staging_.reset(new (std::nothrow) char[need]);
      if (staging_ == nullptr) {  // No memory to stage: stream everything.
        first = mine.size();
        need = 0;
      } else {
        staging_capacity_ = need;
        job->stats.allocated_staging = true;
      }
    }
    int64_t offset = 0;
    for (size_t k = first; k < mine.size(); ++k) {
      SinkChunk& c = datasets[mine[k].dataset].chunks[mine[k].chunk];
      char* to = staging_.get() + offset;
      copies.push_back({c.data, to, mine[k].bytes});
      c.data = to;
      offset += AlignUp(mine[k].bytes);
    }
    job->first_staged = first;
    // Strings are written when the file is created, on the background
    // thread: copy them now (they are meant to be small).
    for (SinkDataset& d : datasets) {
      if (d.spec.dtype != DType::kString) continue;
      for (SinkChunk& c : d.chunks) {
        if (c.rank != comm_->rank() || c.data == nullptr) continue;
        const auto* from = static_cast<const std::string*>(c.data);
        c.data = job->strings.emplace_back(from, from + c.box.num_elements()).data();
      }
    }
  };
  absl::StatusOr<std::unique_ptr<internal::SaveSession>> session =
      internal::SaveSession::Begin(*comm_, prefix, tensors, contents, io, redirect);
  MESHCKPT_RETURN_IF_ERROR(session.status());
  trace.Mark("begin");
  job->session = *std::move(session);
  job->after_commit = std::move(after_commit);
  job->start = start;
  for (const Copy& c : copies) job->stats.staged_bytes += c.bytes;
  job->stats.streamed_bytes = job->session->my_bytes() - job->stats.staged_bytes;

  // The background thread creates the file (rank 0), then writes the chunks
  // that did not fit from the caller's buffers, while this thread copies
  // the rest into staging; the call returns when both are done.
  job_ = std::move(job);
  Job* j = job_.get();
  thread_ = std::thread([this, j] { Run(j); });
  trace.Mark("thread");
  for (const Copy& c : copies) std::memcpy(c.to, c.from, c.bytes);
  trace.Mark("copy");
  j->staged.Open();
  if (j->first_staged > 0) j->streamed.WaitOpen();  // Chunks that did not fit.
  trace.Mark("streamed");
  j->stats.stall_seconds = SecondsSince(start);
  return absl::OkStatus();
}

void AsyncSaver::Run(Job* job) {
  internal::SaveSession& session = *job->session;
  absl::Status s = session.Create(*background_comm_);
  if (s.ok()) {
    absl::Status written = session.Write(0, job->first_staged);
    job->streamed.Open();
    job->staged.WaitOpen();
    if (written.ok())
      written = session.Write(job->first_staged, session.my_chunks().size());
    s = session.Finish(*background_comm_, written);
    job->stats.committed = s.ok();
  }
  job->streamed.Open();  // Also when Create failed.
  if (s.ok() && job->after_commit) {
    s = background_comm_->Agree(job->after_commit(*background_comm_));
  }
  job->status = s;
  job->stats.durable_seconds = SecondsSince(job->start);
  job->finished.Open();
}

}  // namespace meshckpt
