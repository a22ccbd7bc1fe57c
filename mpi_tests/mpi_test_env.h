// What the shared MPI test main gives tests: the world communicator and
// the command line.
#ifndef MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_
#define MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_

#include <string>

#include "absl/strings/string_view.h"
#include "meshckpt/comm/communicator.h"

namespace meshckpt {

// A duplicate of MPI_COMM_WORLD, valid for the whole test run.
Communicator& TestWorld();

// The rest of the first command-line argument that starts with `prefix`
// (e.g. TestArg("--dir=")), or "" when there is none.
std::string TestArg(absl::string_view prefix);

}  // namespace meshckpt

#endif  // MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_
