// Test-only: what happens at the fault points of a save
// (checkpoint/engine/fault_injection.h). Lives in the library
// meshckpt_fault_injection, which only tests link; linking it installs
// nothing by itself. A test arms it with a callback
// (SetFaultCallbackForTesting) or a FaultSpec (ArmFault), e.g. one a test
// program parsed from its MESHCKPT_FAULT environment variable
// (mpi_tests/crash_test.cc); the library itself never reads that variable.
//
// A FaultSpec's text form (ParseFaultSpec) is a comma-separated list of
// key=value:
//   point=<name>   kill when this point is reached (names in
//                  fault_injection.h), or
//   point=random   at every point reached, kill with probability `prob`
//   rank=<r>       only the process that reaches the point as rank r
//                  (default: any rank)
//   hit=<n>        only the n-th time the point is reached in this process
//                  (default 1; point=random ignores it)
//   seed=<s>       point=random: seed of the per-process generator, mixed
//                  with the rank (default 1)
//   prob=<p>       point=random: probability per point reached (default 0.1)
//   log=<path>     before dying, append one line
//                  "fault point=<name> rank=<r> hit=<n> pid=<pid>" to <path>,
//                  so a test can tell the fault fired where it asked
// e.g. MESHCKPT_FAULT=point=after_data_rename,rank=0,log=/tmp/faults.txt
// A kill is SIGKILL, after "meshckpt: MESHCKPT_FAULT kills rank <r> at
// <point> (hit <n>)" on stderr.
//
// Thread-compatible, as the fault points are.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_TESTING_FAULT_INJECTOR_H_
#define MESHCKPT_CHECKPOINT_ENGINE_TESTING_FAULT_INJECTOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

// Every fault point name, in save order.
const std::vector<std::string>& FaultPointNames();

// Where and when to kill this process.
struct FaultSpec {
  std::string point;  // A fault point name or "random".
  int rank = -1;      // -1: any rank.
  int hit = 1;
  uint64_t seed = 1;
  double prob = 0.1;
  std::string log;
};
// InvalidArgument naming the bad key or value.
absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text);

// From now on, kill this process as `spec` says at the fault points it
// reaches (hits are counted from here). Replaces an earlier spec.
void ArmFault(const FaultSpec& spec);

// `callback(point, rank)` runs at every fault point reached (before any
// ArmFault action). An empty callback removes it.
void SetFaultCallbackForTesting(
    std::function<void(absl::string_view point, int rank)> callback);

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_TESTING_FAULT_INJECTOR_H_
