// The resharding matrix's fixture (mpi_tests/reshard_matrix_test.cc): the
// options and phases of a job, the tensors every configuration holds, what
// a job of N ranks saves and restores onto, where the checkpoints live, and
// a restore that checks every buffer bit-exactly. Functions taking a
// Communicator are collective.
#ifndef MESHCKPT_MPI_TESTS_RESHARD_MATRIX_FIXTURE_H_
#define MESHCKPT_MPI_TESTS_RESHARD_MATRIX_FIXTURE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt::reshard_matrix {

using test::Style;

struct MatrixOptions {
  std::string dir = "reshard_work";
  std::string phase = "all";   // save | restore | all
  std::vector<int> expect_np;  // restore: these rank counts must be present
};

// --dir=, --phase=, --expect-np= (or MESHCKPT_RESHARD_DIR, _PHASE,
// _EXPECT_NP), read once.
const MatrixOptions& Options();
bool PhaseSaves();
bool PhaseAll();
bool PhaseRestore();

const std::vector<test::TensorSpec>& Tensors();
// Identifies this build's tensor set; stored in every saved index so a
// checkpoint left by an older build of this test is recognised as stale.
std::string TensorSetFingerprint();

struct Config {
  std::string name;  // e.g. "x2y4-mixed"
  std::vector<MeshDimension> dims;
  bool mixed = false;  // style of tensor i: (i + offset) % kNumStyles
  Style style = Style::kRows;
  int offset = 0;
  int64_t tile_bytes = int64_t{1} << 20;
  // Saves: how data is written. Targets: how it is read back.
  TransferMode mode = TransferMode::kDirect;
  std::string device_type = "CPU";
  std::string mesh_name;

  Style StyleOf(int tensor_index) const {
    if (!mixed) return style;
    return static_cast<Style>((tensor_index + offset) % test::kNumStyles);
  }
};

// What a job of `np` ranks saves. Every mesh's device count divides by np.
std::vector<Config> SaveConfigs(int np);
// What a job of `np` ranks restores onto.
std::vector<Config> TargetConfigs(int np);
// Where this test saves configuration `c` of an `np`-rank job.
std::string PrefixFor(int np, const Config& c);
std::string SavedPrefix(int np, const std::string& config);
Mesh MeshOf(const Config& c, Communicator& world);
Layout LayoutOf(const Config& c, const Mesh& mesh, int tensor_index);

// Rank 0 prints the matrix as it is covered.
void Log(Communicator& world, const std::string& line);

// Checkpoints present in the directory: (np, config name), from rank 0.
std::vector<std::pair<int, std::string>> ListSaved(Communicator& world);

// Restores the tensors whose index `want(i)` is true from `prefix` onto
// target `c` of this job and checks every buffer: wanted ones hold the
// values, the others are untouched. Returns the number of bad elements on
// this rank.
int64_t RestoreAndCheck(Communicator& world, const std::string& prefix,
                        const std::string& label, const Config& c,
                        const std::function<bool(int)>& want);

}  // namespace meshckpt::reshard_matrix

#endif  // MESHCKPT_MPI_TESTS_RESHARD_MATRIX_FIXTURE_H_
