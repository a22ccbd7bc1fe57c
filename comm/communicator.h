// comm/ owns talking between ranks: the Communicator interface, a serial
// implementation and the MPI one. It is the only folder whose code
// includes <mpi.h>; it depends on abseil only.
//
// Communicator: the few collective operations checkpointing needs, behind a
// small interface so that only comm/*.cc and io/*.cc see <mpi.h>.
//
// Two implementations: SerialCommunicator (one process, no MPI needed; what
// CheckpointReader and single-process tools use) and the MPI one
// (comm/mpi_communicator.h). Every call is collective over the communicator:
// all ranks must make the same calls in the same order.
//
// Agree() is how ranks leave a phase together: each passes its own status and
// all get back the same one, OK only when every rank was OK, otherwise the
// error of the lowest failing rank with "rank N: " put in front (the serial
// communicator returns the status unchanged).
//
//   absl::Status s = comm.Agree(WriteMyShards());
//   if (!s.ok()) return s;  // Same status on every rank; nobody is left behind.
//
// A Communicator is used by one thread at a time; DuplicateForThread gives
// another thread its own.
#ifndef MESHCKPT_COMM_COMMUNICATOR_H_
#define MESHCKPT_COMM_COMMUNICATOR_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace meshckpt {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual absl::Status Agree(const absl::Status& local) = 0;
  // Root's `data` ends up in `data` on every rank.
  virtual void Broadcast(std::string* data, int root) = 0;
  // Everyone's `data`, indexed by rank, on `root`; empty elsewhere.
  virtual std::vector<std::string> Gather(const std::string& data, int root) = 0;
  // Everyone's `data`, indexed by rank, on every rank.
  virtual std::vector<std::string> AllGather(const std::string& data) = 0;
  virtual int64_t AllReduceMax(int64_t value) = 0;
  virtual void Barrier() = 0;

  // Root's `n` bytes at `data` end up at `data` on every rank, in place (no
  // copy through a string): for tensor bytes read once and sent to the ranks
  // that also need them.
  virtual void BroadcastBytes(void* data, int64_t n, int root) = 0;
  // Every rank r contributes counts[r] bytes (`mine` holds this rank's); the
  // concatenation in rank order, sum(counts) bytes, ends up at `out` on every
  // rank. `counts` must be the same on every rank; `out` must not overlap
  // `mine`.
  virtual void AllGatherBytes(const void* mine, absl::Span<const int64_t> counts,
                              void* out) = 0;

  // A communicator over `ranks` (ascending ranks of this one, this rank
  // among them), numbered by position in `ranks`. Collective over those
  // ranks only, not the whole communicator: ranks that take part in several
  // subgroups must create them in the same order (any order every rank
  // derives alike is deadlock-free). InvalidArgument for a malformed list,
  // before any communication.
  virtual absl::StatusOr<std::unique_ptr<Communicator>> Subgroup(
      absl::Span<const int> ranks) = 0;

  // Collective: a new communicator over the same ranks, which another
  // thread may use while this one is in use (an async save commits on one
  // from its background thread). FailedPrecondition, on every rank, unless
  // MPI provides MPI_THREAD_MULTIPLE (MpiEnvironment asks for it).
  virtual absl::StatusOr<std::unique_ptr<Communicator>> DuplicateForThread() = 0;

  // The communicator as an MPI Fortran handle (MPI_Comm_c2f) for io/ code
  // that hands it to MPI-IO; nullopt when there is no MPI behind it.
  virtual std::optional<int> mpi_fortran_handle() const = 0;
};

// One process: rank 0 of 1.
std::unique_ptr<Communicator> SerialCommunicator();

// Root's `value` on every rank (trivially copyable T); collective.
template <typename T>
T BroadcastValue(Communicator& comm, T value, int root) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::string bytes(reinterpret_cast<const char*>(&value), sizeof(T));
  comm.Broadcast(&bytes, root);
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

}  // namespace meshckpt

#endif  // MESHCKPT_COMM_COMMUNICATOR_H_
