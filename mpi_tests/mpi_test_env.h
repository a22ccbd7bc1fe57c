// What the shared MPI test main gives tests: the world communicator.
#ifndef MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_
#define MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_

#include "meshckpt/comm/communicator.h"

namespace meshckpt {

// A duplicate of MPI_COMM_WORLD, valid for the whole test run.
Communicator& TestWorld();

}  // namespace meshckpt

#endif  // MESHCKPT_MPI_TESTS_MPI_TEST_ENV_H_
