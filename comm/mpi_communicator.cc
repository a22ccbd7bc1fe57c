// Communicator over an MPI communicator.
#include "meshckpt/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace meshckpt {
namespace {

// MPI errors on our duplicate return instead of aborting; a failure here
// means the MPI library or the network is broken, which no caller can mend,
// so we abort the job rather than leave ranks out of step.
void Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::fprintf(stderr, "meshckpt: %s failed: %.*s\n", what, len, msg);
  MPI_Abort(MPI_COMM_WORLD, 70);
  std::abort();
}

// Completes a non-blocking operation. Waiting ranks poll for ~50 us, then
// sleep between polls (20 us doubling to 1 ms) instead of spinning in a
// blocking call: ranks that finish their share of a save or restore early
// must not take the cores from those still working (MPI's blocking waits
// busy-poll, even with mpi_yield_when_idle; with more ranks than cores that
// cost ~10% of a restore's wall time).
void Wait(MPI_Request* request, const char* what) {
  int done = 0;
  const auto start = std::chrono::steady_clock::now();
  auto sleep = std::chrono::microseconds(20);
  while (true) {
    Check(MPI_Test(request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (std::chrono::steady_clock::now() - start < std::chrono::microseconds(50))
      continue;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
  }
}

class Mpi final : public Communicator {
 public:
  explicit Mpi(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status Agree(const absl::Status& local) override {
    int mine = local.ok() ? size_ : rank_;
    int first = size_;
    MPI_Request r;
    Check(MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_, &r),
          "MPI_Iallreduce");
    Wait(&r, "MPI_Iallreduce");
    if (first == size_) return absl::OkStatus();
    std::string payload;
    if (rank_ == first) {
      payload = absl::StrCat(static_cast<int>(local.code()), ":", local.message());
    }
    Broadcast(&payload, first);
    const size_t colon = payload.find(':');
    const int code = std::atoi(payload.substr(0, colon).c_str());
    return absl::Status(static_cast<absl::StatusCode>(code),
                        absl::StrCat("rank ", first, ": ", payload.substr(colon + 1)));
  }

  void Broadcast(std::string* data, int root) override {
    int64_t n = static_cast<int64_t>(data->size());
    MPI_Request r;
    Check(MPI_Ibcast(&n, 1, MPI_INT64_T, root, comm_, &r), "MPI_Ibcast");
    Wait(&r, "MPI_Ibcast");
    data->resize(n);
    // Chunks below 2^30 keep counts within int.
    for (int64_t off = 0; off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min<int64_t>(kMaxCount, n - off));
      Check(MPI_Ibcast(data->data() + off, count, MPI_BYTE, root, comm_, &r),
            "MPI_Ibcast");
      Wait(&r, "MPI_Ibcast");
    }
  }

  std::vector<std::string> Gather(const std::string& data, int root) override {
    int64_t n = static_cast<int64_t>(data.size());
    std::vector<int64_t> sizes(rank_ == root ? size_ : 0);
    MPI_Request req;
    Check(
        MPI_Igather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, comm_, &req),
        "MPI_Igather");
    Wait(&req, "MPI_Igather");
    // Point-to-point in pieces keeps every count within int.
    std::vector<std::string> out;
    if (rank_ == root) {
      out.resize(size_);
      for (int r = 0; r < size_; ++r) {
        if (r == root) {
          out[r] = data;
          continue;
        }
        out[r].resize(sizes[r]);
        for (int64_t off = 0; off < sizes[r]; off += kMaxCount) {
          const int c = static_cast<int>(std::min(kMaxCount, sizes[r] - off));
          Check(MPI_Irecv(out[r].data() + off, c, MPI_BYTE, r, kGatherTag, comm_, &req),
                "MPI_Irecv");
          Wait(&req, "MPI_Irecv");
        }
      }
    } else {
      for (int64_t off = 0; off < n; off += kMaxCount) {
        const int c = static_cast<int>(std::min(kMaxCount, n - off));
        Check(MPI_Isend(data.data() + off, c, MPI_BYTE, root, kGatherTag, comm_, &req),
              "MPI_Isend");
        Wait(&req, "MPI_Isend");
      }
    }
    return out;
  }

  std::vector<std::string> AllGather(const std::string& data) override {
    int64_t n = static_cast<int64_t>(data.size());
    std::vector<int64_t> sizes(size_);
    MPI_Request req;
    Check(MPI_Iallgather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, comm_, &req),
          "MPI_Iallgather");
    Wait(&req, "MPI_Iallgather");
    std::vector<std::string> out(size_);
    for (int r = 0; r < size_; ++r) {
      out[r] = r == rank_ ? data : std::string(sizes[r], '\0');
      Broadcast(&out[r], r);
    }
    return out;
  }

  int64_t AllReduceMax(int64_t v) override { return Reduce(v, MPI_MAX); }

  // Bulk bytes go through the blocking collectives: a non-blocking one
  // advances only inside MPI calls, so between Wait's sleeps a large,
  // pipelined broadcast would stall (10x slower for 1 GB here), while the
  // blocking ones keep the pipeline moving. Their busy wait is short: the
  // data is ready on the root when the call starts.
  void BroadcastBytes(void* data, int64_t n, int root) override {
    for (int64_t off = 0; off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min<int64_t>(kMaxCount, n - off));
      Check(MPI_Bcast(static_cast<char*>(data) + off, count, MPI_BYTE, root, comm_),
            "MPI_Bcast");
    }
  }

  void AllGatherBytes(const void* mine, absl::Span<const int64_t> counts,
                      void* out) override {
    std::vector<int> c(size_), displs(size_);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      c[r] = static_cast<int>(std::min<int64_t>(counts[r], kMaxCount));
      displs[r] = static_cast<int>(std::min<int64_t>(total, kMaxCount));
      total += counts[r];
    }
    if (total < kMaxCount) {  // Counts and displacements fit an int.
      Check(MPI_Allgatherv(mine, c[rank_], MPI_BYTE, out, c.data(), displs.data(),
                           MPI_BYTE, comm_),
            "MPI_Allgatherv");
      return;
    }
    char* at = static_cast<char*>(out);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_ && counts[r] > 0) std::memcpy(at, mine, counts[r]);
      BroadcastBytes(at, counts[r], r);
      at += counts[r];
    }
  }

  absl::StatusOr<std::unique_ptr<Communicator>> Subgroup(
      absl::Span<const int> ranks) override;

  void Barrier() override {
    MPI_Request r;
    Check(MPI_Ibarrier(comm_, &r), "MPI_Ibarrier");
    Wait(&r, "MPI_Ibarrier");
  }

  absl::StatusOr<std::unique_ptr<Communicator>> DuplicateForThread() override;

  std::optional<int> mpi_fortran_handle() const override {
    return static_cast<int>(MPI_Comm_c2f(comm_));
  }

 private:
  static constexpr int64_t kMaxCount = int64_t{1} << 30;
  static constexpr int kGatherTag = 7301;
  static constexpr int kSubgroupTag = 7302;

  int64_t Reduce(int64_t v, MPI_Op op) {
    int64_t out = 0;
    MPI_Request r;
    Check(MPI_Iallreduce(&v, &out, 1, MPI_INT64_T, op, comm_, &r), "MPI_Iallreduce");
    Wait(&r, "MPI_Iallreduce");
    return out;
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

absl::StatusOr<std::unique_ptr<Communicator>> Duplicate(MPI_Comm comm) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    return absl::FailedPreconditionError(
        "MPI is not initialized; create an MpiEnvironment first");
  }
  MPI_Comm dup;
  if (MPI_Comm_dup(comm, &dup) != MPI_SUCCESS) {
    return absl::InternalError("MPI_Comm_dup failed");
  }
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(new Mpi(dup));
}

absl::StatusOr<std::unique_ptr<Communicator>> Mpi::DuplicateForThread() {
  // The thread level is the same on every rank, so all ranks return here
  // alike or all go on to the collective MPI_Comm_dup.
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_MULTIPLE) {
    return absl::FailedPreconditionError(
        "a second thread needs MPI initialized with MPI_THREAD_MULTIPLE (use "
        "meshckpt::MpiEnvironment, or MPI_Init_thread with MPI_THREAD_MULTIPLE)");
  }
  return Duplicate(comm_);
}

absl::StatusOr<std::unique_ptr<Communicator>> Mpi::Subgroup(absl::Span<const int> ranks) {
  bool member = false;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 0 || ranks[i] >= size_ || (i > 0 && ranks[i] <= ranks[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("subgroup ranks must ascend within [0, ", size_, "); entry ", i,
                       " is ", ranks[i]));
    }
    member = member || ranks[i] == rank_;
  }
  if (!member) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank_, " is not in the subgroup it creates"));
  }
  // MPI_Comm_create_group involves the group's members only, so disjoint
  // subgroups are created at the same time, each by its own ranks.
  MPI_Group all, sub;
  Check(MPI_Comm_group(comm_, &all), "MPI_Comm_group");
  Check(MPI_Group_incl(all, static_cast<int>(ranks.size()), ranks.data(), &sub),
        "MPI_Group_incl");
  MPI_Comm out;
  Check(MPI_Comm_create_group(comm_, sub, kSubgroupTag, &out), "MPI_Comm_create_group");
  MPI_Group_free(&sub);
  MPI_Group_free(&all);
  MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(new Mpi(out));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::World() {
  return Duplicate(MPI_COMM_WORLD);
}

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::FromFortranHandle(
    int handle) {
  return Duplicate(MPI_Comm_f2c(handle));
}

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // MPI_THREAD_MULTIPLE: an async save commits from a background thread.
    int provided = MPI_THREAD_SINGLE;
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    owns_ = true;
  }
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

void MpiEnvironment::Abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();
}

}  // namespace meshckpt
