// The MPI implementation of Communicator, and MPI start-up for programs.
//
// MpiCommunicator duplicates the communicator it is given, so our collectives
// never interleave with the application's, and sets MPI_ERRORS_RETURN on the
// duplicate. MPI itself stays in mpi_communicator.cc; callers that hold an
// MPI_Comm pass MPI_Comm_c2f(comm).
//
//   int main(int argc, char** argv) {
//     meshckpt::MpiEnvironment env(&argc, &argv);
//     auto comm = meshckpt::MpiCommunicator::World();
//     ...
//   }
#ifndef MESHCKPT_COMM_MPI_COMMUNICATOR_H_
#define MESHCKPT_COMM_MPI_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

class MpiCommunicator {
 public:
  // A duplicate of MPI_COMM_WORLD. FailedPrecondition if MPI is not
  // initialized.
  static absl::StatusOr<std::unique_ptr<Communicator>> World();
  // A duplicate of the communicator whose Fortran handle is given.
  static absl::StatusOr<std::unique_ptr<Communicator>> FromFortranHandle(int handle);
};

// Initializes MPI (if not yet) for the lifetime of the object and finalizes
// it at the end if it initialized it. It asks for MPI_THREAD_MULTIPLE, which
// async saves need (Communicator::DuplicateForThread).
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  // MPI_Abort on the world communicator, for fatal paths in test drivers.
  [[noreturn]] static void Abort(int code);

 private:
  bool owns_ = false;
};

}  // namespace meshckpt

#endif  // MESHCKPT_COMM_MPI_COMMUNICATOR_H_
