// Shared main for tests run under mpiexec.
//
// Every rank runs every test. Only rank 0 prints gtest's output; each rank's
// failures are reported with its rank in front. The exit code is agreed: the
// job fails when any rank failed, so a failure on rank 3 is never lost.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

std::unique_ptr<Communicator>* g_world = nullptr;

// Prints failures from ranks other than 0, which have no default printer.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_,
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

Communicator& TestWorld() { return **g_world; }

std::string TestArg(absl::string_view prefix) {
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, prefix)) return std::string(a);
  }
  return "";
}

}  // namespace meshckpt

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  auto world = meshckpt::MpiCommunicator::World();
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", std::string(world.status().message()).c_str());
    return 1;
  }
  meshckpt::g_world = &*world;
  const int rank = (*world)->rank();
  ::testing::TestEventListeners& listeners =
      ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new meshckpt::RankFailurePrinter(rank));
  }
  const int local = RUN_ALL_TESTS();
  const int64_t failed = (*world)->AllReduceMax(local != 0 ? 1 : 0);
  if (rank == 0 && failed && local == 0) {
    std::fprintf(stderr, "FAILED on another rank (see [rank N] lines)\n");
  }
  world->reset();
  return failed ? 1 : 0;
}
