// What the corruption tests share: corruption_flip_test.cc (flipped bytes)
// and corruption_truncation_test.cc (truncated and deleted files, damaged
// string lengths). Both run in one process (SerialCommunicator, a 4-device
// mesh on one rank).
//
// CorruptionFixture saves a small checkpoint once per process (5 tensors:
// float32 in chunked HDF5 storage, int64, float64 and bfloat16 in contiguous
// storage, strings as one byte blob, io/format/string_blob.h) with 256-byte
// checksum tiles and keeps its bytes. A trial writes a damaged copy as the
// trial checkpoint and reads it back with RestoreAll (RestoreTensors),
// Inspect (CheckpointReader) and, when the CLI is built, CliVerify
// (`meshckpt verify`). Report prints one kind of trial's outcome counts as a
// "CORRUPTION ..." line on stdout and records them as XML properties.
//
// MESHCKPT_CORRUPTION_SEED and MESHCKPT_CORRUPTION_TRIALS (default 300)
// override the seed and the trials per kind in both test binaries.
#ifndef MESHCKPT_TESTS_RELIABILITY_CORRUPTION_FIXTURE_H_
#define MESHCKPT_TESTS_RELIABILITY_CORRUPTION_FIXTURE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/test_tensors.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace corruption_test {

// MESHCKPT_CORRUPTION_SEED, else a fixed seed.
uint64_t Seed();
// MESHCKPT_CORRUPTION_TRIALS, else 300.
int Trials();

// Where a tensor's elements are stored in the data file.
struct Extent {
  std::string key;
  int64_t offset = 0;
  int64_t size = 0;
};

// The raw storage of `dataset` (contiguous, or each chunk), via HDF5.
std::vector<Extent> ExtentsOf(const std::string& file, const std::string& key);

// The `meshckpt` CLI, when this build has it; "" otherwise.
std::string CliPath();

// Exit code of `meshckpt verify --quiet PREFIX`.
int CliVerify(const std::string& prefix);

// Outcome counters of one kind of trial.
struct Counts {
  std::map<std::string, int> n;
  void Add(const std::string& what) { ++n[what]; }
  std::string Line(const std::string& kind) const {
    std::string s = absl::StrCat("CORRUPTION ", kind);
    for (const auto& [k, v] : n) absl::StrAppend(&s, " ", k, "=", v);
    return s;
  }
};

class CorruptionFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static std::string TrialPrefix() { return *root_ + "/trial/ckpt"; }

  static void WriteTrial(const std::string& data, const std::string& index);

  // The extent holding byte `pos` of the data file, or nullptr.
  static const Extent* ExtentAt(int64_t pos);

  struct Restored {
    absl::Status status;
    bool exact = false;  // Meaningful when status is OK.
    std::string report;
  };

  // Restores the tensors (all, or all but `skip`) of the trial checkpoint
  // with RestoreTensors and checks every element.
  // With `reshard`, on a mesh x=4,y=1 (other shard boxes than saved).
  static Restored RestoreAll(const std::string& skip = "", bool reshard = false);

  // CheckpointReader's view: VerifyAll problems (or the error opening /
  // verifying), and whether ReadTensor of every tensor is bit-exact.
  struct Inspected {
    absl::Status status;  // Open or VerifyAll error.
    std::vector<std::string> problems;
    bool reads_exact = false;
  };
  static Inspected Inspect();

  // The "CORRUPTION <kind> ..." line on stdout and one XML property per count.
  static void Report(const Counts& c, const std::string& kind);

  static std::string* root_;
  static Communicator* comm_;
  static Mesh* mesh_;
  static std::vector<std::pair<test::TensorSpec, std::vector<std::string>>>* specs_;
  static std::string* data_;
  static std::string* index_;
  static std::vector<Extent>* extents_;
};

}  // namespace corruption_test
}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_RELIABILITY_CORRUPTION_FIXTURE_H_
